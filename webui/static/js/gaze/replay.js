// Replays a recorded or simulated scanpath as if it came from a tracker (tests, demos).
//
// Scanpath JSON: [[t_ms, x, y], ...] (t from the start of the replay, non-decreasing), or
// {"coords": "image"|"screen", "points": [[t_ms, x, y], ...]}. A point with a null/NaN x or y is
// a dropout (valid = false). Image coordinates are mapped through the viewer's transform at the
// tick that emits them, so zooming and panning during a replay move the screen samples the way a
// real reader's gaze on the same image spot would move.

import { GazeSource, registerSource } from './source.js';

/** Parse a scanpath document into {coords, points: [[t, x, y], ...]}. */
export function parseScanpath(doc, defaultCoords = 'image') {
  const points = Array.isArray(doc) ? doc : doc && doc.points;
  const coords = (!Array.isArray(doc) && doc && doc.coords) || defaultCoords;
  if (!Array.isArray(points)) throw new Error('scanpath must be a list of [t_ms, x, y]');
  if (coords !== 'image' && coords !== 'screen') throw new Error(`unknown scanpath coords ${coords}`);
  let last = -Infinity;
  const parsed = points.map((p, i) => {
    if (!Array.isArray(p) || p.length < 3 || !Number.isFinite(Number(p[0]))) {
      throw new Error(`scanpath point ${i} is not [t_ms, x, y]`);
    }
    const t = Number(p[0]);
    if (t < last) throw new Error(`scanpath time goes backwards at point ${i}`);
    last = t;
    const x = p[1] === null ? NaN : Number(p[1]);
    const y = p[2] === null ? NaN : Number(p[2]);
    return [t, x, y];
  });
  return { coords, points: parsed };
}

/** Fetch a scanpath from a same-origin URL (other origins are refused). */
export async function loadScanpath(url, defaultCoords = 'image') {
  const resolved = new URL(url, window.location.href);
  if (resolved.origin !== window.location.origin) throw new Error('scanpath URL must be on this server');
  const res = await fetch(resolved, { credentials: 'same-origin' });
  if (!res.ok) throw new Error(`scanpath ${resolved.pathname}: HTTP ${res.status}`);
  return parseScanpath(await res.json(), defaultCoords);
}

export class ReplaySource extends GazeSource {
  static kind = 'replay';

  static isEyeGaze = false;

  /**
   * @param {{scanpath: {coords, points}, toScreen?: (ix, iy) => {x, y}, rate?: number,
   *   tickMs?: number, url?: string}} options  toScreen is required for image coordinates.
   */
  constructor(options) {
    super(options);
    this.scanpath = options.scanpath;
    this.toScreen = options.toScreen;
    this.rate = options.rate ?? 1;
    this.tickMs = options.tickMs ?? 8;
    this.next = 0;
    if (this.scanpath.coords === 'image' && typeof this.toScreen !== 'function') {
      throw new Error('an image-coordinate scanpath needs the viewer transform (toScreen)');
    }
  }

  get total() { return this.scanpath.points.length; }

  get emitted() { return this.next; }

  async start() {
    if (this.running) return;
    this.running = true;
    this.startedAt = performance.now();
    this.timer = setInterval(() => this.tick(), this.tickMs);
    this.tick();
  }

  async stop() {
    clearInterval(this.timer);
    this.running = false;
  }

  tick() {
    if (!this.running) return;
    const elapsed = (performance.now() - this.startedAt) * this.rate;
    const pts = this.scanpath.points;
    // Every due point is emitted, even after a throttled (hidden-tab) tick: nothing is skipped,
    // and each sample keeps its scheduled time.
    while (this.next < pts.length && pts[this.next][0] <= elapsed) {
      const [t, x, y] = pts[this.next];
      this.next += 1;
      const when = this.startedAt + t / this.rate;
      if (!Number.isFinite(x) || !Number.isFinite(y)) {
        this.emit(when, -1, -1, false);
      } else if (this.scanpath.coords === 'image') {
        const p = this.toScreen(x, y);
        this.emit(when, p.x, p.y, true);
      } else {
        this.emit(when, x, y, true);
      }
    }
    if (this.next >= pts.length) {
      clearInterval(this.timer);
      this.finishStream();
    }
  }

  info() {
    return {
      coords: this.scanpath.coords,
      points: this.total,
      rate: this.rate,
      ...(this.options.url ? { url: this.options.url } : {}),
    };
  }
}

registerSource(ReplaySource);
