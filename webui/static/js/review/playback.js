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
  // The viewer state each sample was recorded in (docs/gaze-protocol.md): replay shows it.
  const VIEW_COLUMNS = ['zoom', 'pan_x', 'pan_y', 'screen_w', 'screen_h', 'wl_center', 'wl_width'];
  const viewIdx = VIEW_COLUMNS.map(idx);
  path.view = Object.fromEntries(VIEW_COLUMNS.map((name) => [name, new Float64Array(n)]));
  const t0 = n ? rows[0][it] : 0;
  rows.forEach((r, i) => {
    path.t[i] = r[it] - t0;
    path.x[i] = r[ix];
    path.y[i] = r[iy];
    const f = r[fl];
    path.ok[i] = (f & FLAG_VALID) && (f & FLAG_ON_IMAGE) ? 1 : 0;
    VIEW_COLUMNS.forEach((name, k) => { path.view[name][i] = viewIdx[k] >= 0 ? r[viewIdx[k]] : NaN; });
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

/** Index of the last sample at or before `time` (ms, path time); 0 before the first. */
export function sampleIndexAt(path, time) {
  let lo = 0;
  let hi = path.t.length - 1;
  if (hi < 0 || time <= path.t[0]) return 0;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (path.t[mid] <= time) lo = mid; else hi = mid - 1;
  }
  return lo;
}

/**
 * The view (zoom, panX, panY in CSS px) that shows, in a canvas of cssW x cssH, the image region the
 * reader's canvas (recorded size screen_w x screen_h) showed at sample `i`: the reader's canvas is
 * scaled to fit and centred, so the reader's zoom and pan are reproduced whatever the review window.
 * Returns null when the sample carries no usable viewer state.
 */
export function recordedView(path, i, cssW, cssH) {
  const v = path.view;
  if (!v || i < 0 || i >= path.t.length) return null;
  const zoom = v.zoom[i];
  const w = v.screen_w[i];
  const h = v.screen_h[i];
  if (!(zoom > 0 && w > 0 && h > 0 && Number.isFinite(v.pan_x[i]) && Number.isFinite(v.pan_y[i]))) return null;
  const s = Math.min(cssW / w, cssH / h);
  // Image point at the centre of the reader's canvas stays at the centre of ours.
  const cx = (w / 2 - v.pan_x[i]) / zoom;
  const cy = (h / 2 - v.pan_y[i]) / zoom;
  const z = zoom * s;
  return { zoom: z, panX: cssW / 2 - cx * z, panY: cssH / 2 - cy * z };
}

/** The recorded window/level at sample `i`, or null. */
export function recordedWindow(path, i) {
  const v = path.view;
  if (!v || i < 0 || i >= path.t.length) return null;
  const center = v.wl_center[i];
  const width = v.wl_width[i];
  return Number.isFinite(center) && width > 0 ? { center, width } : null;
}
