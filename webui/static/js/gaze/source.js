// The gaze-source interface every source implements, and the registry the reading page picks
// sources from. See docs/viewer.md ("Gaze sources") for the contract a new source must keep.
//
// A source produces screen samples {t, x, y, valid}:
//   t      ms on the page's monotonic clock (performance.now() / Event.timeStamp)
//   x, y   viewport CSS px (clientX/clientY space); ignored when valid is false
//   valid  false when the source has no gaze position (face lost, blink, pointer outside)

export class GazeSource extends EventTarget {
  /** Short name stored as the session's `source` ("mouse", "replay", "webcam", "tracker"). */
  static kind = 'abstract';

  /** True only for real eye gaze (sets flag bit 8 on every sample). */
  static isEyeGaze = false;

  /** True when start() needs a user gesture or set-up screen (permissions, calibration). */
  static needsUserStart = false;

  constructor(options = {}) {
    super();
    this.options = options;
    this.running = false;
  }

  get kind() { return this.constructor.kind; }

  get isEyeGaze() { return this.constructor.isEyeGaze; }

  /**
   * Check, before a reading session is opened for this source, that it can run at all (camera
   * present and allowed, ...). Rejects with a reader-facing message when it cannot, so no empty
   * session is left behind. Sources with nothing to check resolve at once.
   */
  async preflight() {}

  /** Begin producing samples. May prompt for permissions; rejects when the source cannot run. */
  async start() { this.running = true; }

  /** Stop producing samples; safe to call twice. */
  async stop() { this.running = false; }

  /**
   * Optional: calibrate (and validate) the source. Sources without it leave it undefined.
   * Resolves to details merged into the session's source_info (e.g. {validation_error_px}).
   */
  // async calibrate(ui) {}

  /** Details recorded with the session as source_info (JSON-serialisable). */
  info() { return {}; }

  /** Subscribe to samples; returns a function that unsubscribes. */
  onSample(callback) {
    const handler = (event) => callback(event.detail);
    this.addEventListener('sample', handler);
    return () => this.removeEventListener('sample', handler);
  }

  /** For implementations: hand one screen sample to subscribers. */
  emit(t, x, y, valid) {
    this.dispatchEvent(new CustomEvent('sample', { detail: { t, x, y, valid } }));
  }

  /** For implementations that end by themselves (replay): subscribers get an 'end' event. */
  finishStream() {
    this.running = false;
    this.dispatchEvent(new Event('end'));
  }
}

const registry = new Map();

/** Make a source class available under its kind. */
export function registerSource(SourceClass) {
  registry.set(SourceClass.kind, SourceClass);
}

export function sourceClass(kind) {
  const cls = registry.get(kind);
  if (!cls) throw new Error(`unknown gaze source ${JSON.stringify(kind)}`);
  return cls;
}

export function sourceKinds() {
  return [...registry.keys()];
}

export function createSource(kind, options = {}) {
  const Cls = sourceClass(kind);
  return new Cls(options);
}
