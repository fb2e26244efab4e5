// The gaze status panel: source, sample rate and valid share over the last seconds, face found
// (webcam), validation accuracy in degrees, and the source's start-up progress. Never shows NaN.

import { formatDeg } from '../gaze/accuracy.js';

const WINDOW_MS = 2000;

/** Rolling sample statistics over the last `windowMs` (pure; times in ms). */
export class GazeStats {
  constructor(windowMs = WINDOW_MS) {
    this.windowMs = windowMs;
    this.samples = []; // [t, valid]
  }

  add(t, valid) {
    this.samples.push([t, valid ? 1 : 0]);
    const from = t - this.windowMs;
    while (this.samples.length && this.samples[0][0] < from) this.samples.shift();
  }

  /** Samples per second over the window, or null before two samples. */
  get rateHz() {
    const n = this.samples.length;
    if (n < 2) return null;
    const span = this.samples[n - 1][0] - this.samples[0][0];
    return span > 0 ? ((n - 1) * 1000) / span : null;
  }

  /** Share of valid samples in the window, or null without samples. */
  get validFraction() {
    if (!this.samples.length) return null;
    return this.samples.reduce((sum, s) => sum + s[1], 0) / this.samples.length;
  }
}

function show(value, format) {
  return value === null || value === undefined || (typeof value === 'number' && !Number.isFinite(value)) ? '—' : format(value);
}

export function bindGazePanel(source, node) {
  const stats = new GazeStats();
  let last = null;
  source.onSample((s) => { stats.add(s.t, s.valid); last = s; });
  const cell = (name) => node.querySelector(`[data-field=${name}]`);
  const render = () => {
    cell('rate').textContent = show(stats.rateHz, (v) => `${v.toFixed(0)} Hz`);
    cell('valid').textContent = show(stats.validFraction, (v) => `${Math.round(v * 100)}%`);
    const isWebcam = source.kind === 'webcam';
    for (const row of node.querySelectorAll('[data-row=face]')) row.hidden = !isWebcam;
    // Honest: "yes" only while the tracker has a face now; never a guess while it starts.
    if (isWebcam) cell('face').textContent = last && last.valid ? 'yes' : source.faceSeen ? 'no face (lost)' : 'no face';
    const info = source.info() || {};
    const validation = info.calibration && info.calibration.validation;
    cell('accuracy').textContent = validation ? formatDeg(validation.mean_deg) : 'not calibrated';
  };
  source.addEventListener('progress', (e) => {
    const state = document.getElementById('source-state');
    state.textContent = e.detail;
    state.dataset.state = 'starting';
  });
  render();
  return setInterval(render, 500);
}
