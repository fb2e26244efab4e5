// Scanpath playback: stored samples -> time-sorted path, and a clock with speed control.

import { COL, FLAG_ON_IMAGE, FLAG_VALID } from '../gaze/sample.js';

/**
 * Stored samples (GET /api/sessions/{id}/samples JSON) -> a time-sorted image-space path.
 * Times are made relative to the first sample; `ok` marks valid on-image samples.
 */
export function samplesToPath(body) {
  const cols = body.columns || [];
  const idx = (name) => (cols.length ? cols.indexOf(name) : COL[name]);
  const it = idx('t_ms');
  const ix = idx('image_x');
  const iy = idx('image_y');
  const fl = idx('flags');
  const rows = [...body.samples].sort((a, b) => a[it] - b[it]);
  const n = rows.length;
  const path = { t: new Float64Array(n), x: new Float64Array(n), y: new Float64Array(n), ok: new Uint8Array(n) };
  const t0 = n ? rows[0][it] : 0;
  rows.forEach((r, i) => {
    path.t[i] = r[it] - t0;
    path.x[i] = r[ix];
    path.y[i] = r[iy];
    const f = r[fl];
    path.ok[i] = (f & FLAG_VALID) && (f & FLAG_ON_IMAGE) ? 1 : 0;
  });
  path.duration = n ? path.t[n - 1] : 0;
  return path;
}

/** Playback clock in path time (ms); advance() is driven by requestAnimationFrame. */
export class Playback extends EventTarget {
  constructor(duration) {
    super();
    this.duration = duration;
    this.time = 0;
    this.speed = 1;
    this.playing = false;
    this.last = null;
  }

  play() {
    if (this.time >= this.duration) this.time = 0;
    this.playing = true;
    this.last = performance.now();
    const step = (now) => {
      if (!this.playing) return;
      this.advance(now - this.last);
      this.last = now;
      if (this.playing) requestAnimationFrame(step);
    };
    requestAnimationFrame(step);
    this.changed();
  }

  pause() {
    this.playing = false;
    this.changed();
  }

  toggle() {
    if (this.playing) this.pause(); else this.play();
  }

  /** Move forward by `wallMs` of real time at the current speed; stops at the end. */
  advance(wallMs) {
    this.time = Math.min(this.duration, this.time + wallMs * this.speed);
    if (this.time >= this.duration) this.playing = false;
    this.changed();
  }

  seek(time) {
    this.time = Math.min(this.duration, Math.max(0, time));
    this.changed();
  }

  setSpeed(speed) {
    this.speed = speed;
    this.changed();
  }

  changed() {
    this.dispatchEvent(new Event('change'));
  }
}
