// Mouse pointer as a gaze stand-in (demos, accessibility, development). Not eye gaze: samples
// never carry flag bit 8, and the session records source "mouse".

import { GazeSource, registerSource } from './source.js';

export class MouseSource extends GazeSource {
  static kind = 'mouse';

  static isEyeGaze = false;

  /** @param {{rateHz?: number, target?: EventTarget}} options */
  constructor(options = {}) {
    super(options);
    this.rateHz = options.rateHz ?? 60;
    this.target = options.target ?? window;
    this.last = null;
    this.inside = false;
    this.onMove = (e) => {
      this.last = { x: e.clientX, y: e.clientY };
      this.inside = true;
    };
    this.onLeave = () => { this.inside = false; };
  }

  async start() {
    if (this.running) return;
    this.target.addEventListener('pointermove', this.onMove, { passive: true });
    this.target.addEventListener('pointerdown', this.onMove, { passive: true });
    document.documentElement.addEventListener('pointerleave', this.onLeave);
    // A still pointer is still "looking": sample the last position at a fixed rate rather than
    // only on movement, so dwell time shows in the data as it would with a tracker.
    this.timer = setInterval(() => {
      const t = performance.now();
      if (this.last && this.inside) this.emit(t, this.last.x, this.last.y, true);
      else this.emit(t, -1, -1, false);
    }, 1000 / this.rateHz);
    this.running = true;
  }

  async stop() {
    clearInterval(this.timer);
    this.target.removeEventListener('pointermove', this.onMove);
    this.target.removeEventListener('pointerdown', this.onMove);
    document.documentElement.removeEventListener('pointerleave', this.onLeave);
    this.running = false;
  }

  info() {
    return { rate_hz: this.rateHz, device: 'pointer' };
  }
}

registerSource(MouseSource);
