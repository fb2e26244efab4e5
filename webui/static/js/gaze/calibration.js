// Calibration, validation and drift-check screens for the webcam source, drawn over the page on a
// dark radiograph-like background (the luminance the reader's eyes adapt to while reading).
//
// The overlay never trains WebGazer from arbitrary clicks: only clicks on a calibration target
// record a training point, at the target's centre.

import {
  CALIBRATION_POINTS, DRIFT_POINT, VALIDATION_POINTS, accuracy, needsRecalibration, normaliseSettings, pxToDeg,
  formatPx, toPixels,
} from './accuracy.js';

const SETTINGS_KEY = 'mcgip.webcam.settings';
const CALIBRATION_KEY = 'mcgip.webcam.calibration';
const CSS_URL = '/static/css/gaze-calibration.css';

export function loadSettings() {
  try { return normaliseSettings(JSON.parse(window.localStorage.getItem(SETTINGS_KEY) || '{}')); } catch (_) {
    return normaliseSettings({});
  }
}

export function saveSettings(settings) {
  window.localStorage.setItem(SETTINGS_KEY, JSON.stringify(normaliseSettings(settings)));
}

/** The last accepted calibration of this browser ({calibrated_at, validation, settings}) or null. */
export function loadCalibration() {
  try { return JSON.parse(window.localStorage.getItem(CALIBRATION_KEY) || 'null'); } catch (_) { return null; }
}

export function saveCalibration(calibration) {
  window.localStorage.setItem(CALIBRATION_KEY, JSON.stringify(calibration));
}

function ensureCss() {
  if (!document.querySelector(`link[href="${CSS_URL}"]`)) {
    const link = document.createElement('link');
    link.rel = 'stylesheet';
    link.href = CSS_URL;
    document.head.append(link);
  }
}

function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

/** A synthetic chest-radiograph-like picture: dark surround, lung fields, mediastinum, grain. */
function drawBackground(canvas) {
  const w = canvas.width = window.innerWidth;
  const hgt = canvas.height = window.innerHeight;
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = '#060606';
  ctx.fillRect(0, 0, w, hgt);
  const body = ctx.createRadialGradient(w / 2, hgt / 2, hgt * 0.1, w / 2, hgt / 2, hgt * 0.65);
  body.addColorStop(0, '#5a5a5a');
  body.addColorStop(1, '#121212');
  ctx.fillStyle = body;
  ctx.beginPath();
  ctx.ellipse(w / 2, hgt / 2, Math.min(w, hgt * 1.3) * 0.42, hgt * 0.47, 0, 0, 2 * Math.PI);
  ctx.fill();
  for (const side of [-1, 1]) {
    const lung = ctx.createRadialGradient(w / 2 + side * hgt * 0.2, hgt * 0.45, 5, w / 2 + side * hgt * 0.2, hgt * 0.45, hgt * 0.3);
    lung.addColorStop(0, '#1c1c1c');
    lung.addColorStop(1, '#383838');
    ctx.fillStyle = lung;
    ctx.beginPath();
    ctx.ellipse(w / 2 + side * hgt * 0.2, hgt * 0.47, hgt * 0.15, hgt * 0.3, side * 0.12, 0, 2 * Math.PI);
    ctx.fill();
  }
  const image = ctx.getImageData(0, 0, w, hgt);
  let seed = 7;
  for (let i = 0; i < image.data.length; i += 4) {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    const n = ((seed >> 16) & 15) - 8;
    image.data[i] += n; image.data[i + 1] += n; image.data[i + 2] += n;
  }
  ctx.putImageData(image, 0, 0);
}

const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

/**
 * The overlay. Predictions reach it through feed(x, y) (the webcam source forwards WebGazer's).
 * @param {{webgazer: object, clicksPerPoint?: number, settleMs?: number, collectMs?: number}} options
 */
export class CalibrationOverlay {
  constructor(options) {
    this.wg = options.webgazer;
    this.clicksPerPoint = options.clicksPerPoint ?? 3;
    this.settleMs = options.settleMs ?? 700;
    this.collectMs = options.collectMs ?? 1500;
    this.maxCollectMs = options.maxCollectMs ?? 8000;
    this.minPredictions = options.minPredictions ?? 3;
    this.collecting = null;
    this.root = null;
  }

  /** A gaze prediction (viewport CSS px) while the overlay is open. */
  feed(x, y) {
    if (this.collecting && Number.isFinite(x) && Number.isFinite(y)) this.collecting.push([x, y]);
  }

  open() {
    ensureCss();
    const canvas = h('canvas', { class: 'gaze-cal-bg' });
    this.root = h('div', { class: 'gaze-cal', 'data-testid': 'calibration' }, canvas);
    document.body.append(this.root);
    drawBackground(canvas);
  }

  close() {
    if (this.root) this.root.remove();
    this.root = null;
    this.collecting = null;
  }

  clear() {
    for (const node of [...this.root.children]) if (node.tagName !== 'CANVAS') node.remove();
  }

  /** Settings form; resolves to the settings the reader confirmed. */
  intro(settings) {
    this.clear();
    return new Promise((resolve) => {
      const field = (name, label) => h('label', {}, label, h('input', {
        type: 'number', name, min: '1', step: 'any', value: String(settings[name]), 'data-testid': `cal-${name}`,
      }));
      const form = h('form', { class: 'gaze-cal-panel', 'data-testid': 'cal-intro' },
        h('h2', {}, 'Webcam calibration'),
        h('p', {}, 'Sit as you will while reading, keep your head still, and click each red dot '
          + `${this.clicksPerPoint} times while looking at its centre. Blue dots then check the accuracy: just look at them.`),
        field('screen_mm_w', 'Screen width (mm)'),
        field('distance_mm', 'Viewing distance (mm)'),
        field('bound_deg', 'Recalibrate above (degrees)'),
        h('div', { class: 'buttons' }, h('button', { type: 'submit', 'data-testid': 'cal-start' }, 'Start calibration')));
      form.addEventListener('submit', (e) => {
        e.preventDefault();
        const data = Object.fromEntries(new FormData(form).entries());
        resolve(normaliseSettings(data));
      });
      this.root.append(form);
    });
  }

  /** Nine click targets; each click on a target trains WebGazer at the target's centre. */
  async calibrate() {
    this.clear();
    if (typeof this.wg.clearData === 'function') await this.wg.clearData();
    const targets = toPixels(CALIBRATION_POINTS, window.innerWidth, window.innerHeight);
    this.root.append(h('div', { class: 'gaze-cal-hint' }, 'Look at the red dot and click it.'));
    for (let i = 0; i < targets.length; i += 1) {
      const [x, y] = targets[i];
      await new Promise((resolve) => {
        let clicks = 0;
        const count = h('span', { class: 'count' }, `0/${this.clicksPerPoint}`);
        const dot = h('button', {
          type: 'button', class: 'gaze-cal-point', 'data-testid': 'cal-point', 'data-index': String(i),
          style: `left:${x}px;top:${y}px`, 'aria-label': `calibration point ${i + 1}`,
        }, count);
        dot.addEventListener('click', (e) => {
          e.stopPropagation();
          this.wg.recordScreenPosition(x, y, 'click');
          clicks += 1;
          count.textContent = `${clicks}/${this.clicksPerPoint}`;
          if (clicks >= this.clicksPerPoint) { dot.remove(); resolve(); }
        });
        this.root.append(dot);
      });
    }
  }

  /** Show a target, let the eyes settle, collect predictions. Resolves to the predictions. */
  async look(x, y, testid) {
    const dot = h('div', {
      class: 'gaze-cal-point validation', 'data-testid': testid, style: `left:${x}px;top:${y}px`,
    });
    this.root.append(dot);
    await sleep(this.settleMs);
    this.collecting = [];
    const start = performance.now();
    // WebGazer's rate varies with the machine (10-30 Hz typical); wait for enough predictions.
    while (performance.now() - start < this.collectMs
      || (this.collecting.length < this.minPredictions && performance.now() - start < this.maxCollectMs)) {
      await sleep(50);
    }
    const predictions = this.collecting;
    this.collecting = null;
    dot.remove();
    return predictions;
  }

  async validate(settings) {
    this.clear();
    this.root.append(h('div', { class: 'gaze-cal-hint' }, 'Look at each blue dot until it moves.'));
    const trials = [];
    for (const target of toPixels(VALIDATION_POINTS, window.innerWidth, window.innerHeight)) {
      trials.push({ target, predictions: await this.look(target[0], target[1], 'val-point') });
    }
    return accuracy(trials, settings, window.screen.width);
  }

  /** Result panel; resolves to 'continue' or 'recalibrate'. */
  verdict(result, settings, title) {
    this.clear();
    const bad = needsRecalibration(result, settings);
    const deg = (v) => (Number.isFinite(v) ? `${v.toFixed(1)}°` : 'n/a');
    return new Promise((resolve) => {
      const panel = h('div', { class: 'gaze-cal-panel', 'data-testid': 'cal-result', 'data-ok': bad ? 'false' : 'true' },
        h('h2', {}, title),
        h('p', { 'data-testid': 'cal-accuracy' },
          `Mean error ${formatPx(result.mean_px)} (${deg(result.mean_deg)}), `
          + `max ${formatPx(result.max_px)} (${deg(result.max_deg)}).`),
        bad ? h('p', { class: 'warn', 'data-testid': 'cal-warning' },
          result.missing ? `No gaze was found for ${result.missing} target(s): check that your face is lit and visible.`
            : `Accuracy is worse than ${settings.bound_deg}°. Recalibrating is recommended.`) : null,
        h('div', { class: 'buttons' },
          h('button', { type: 'button', 'data-testid': 'cal-recalibrate', onclick: () => resolve('recalibrate') }, 'Recalibrate'),
          h('button', { type: 'button', 'data-testid': 'cal-continue', onclick: () => resolve('continue') },
            bad ? 'Continue anyway' : 'Continue')));
      this.root.append(panel);
    });
  }

  /**
   * Full calibration with validation, repeated while the reader asks to recalibrate.
   * @returns {Promise<object>} details for the session's source_info.calibration
   */
  async runFull(settings, { askSettings = true } = {}) {
    this.open();
    try {
      let current = settings;
      if (askSettings) {
        current = await this.intro(settings);
        saveSettings(current);
      }
      let attempts = 0;
      for (;;) {
        attempts += 1;
        await this.calibrate();
        const validation = await this.validate(current);
        const choice = await this.verdict(validation, current, 'Calibration result');
        if (choice === 'continue') {
          const calibration = {
            calibrated_at: new Date().toISOString(),
            points: CALIBRATION_POINTS.length,
            clicks_per_point: this.clicksPerPoint,
            attempts,
            validation,
            settings: current,
            below_bound: !needsRecalibration(validation, current),
          };
          saveCalibration(calibration);
          return calibration;
        }
      }
    } finally {
      this.close();
    }
  }

  /**
   * Quick drift check (one target). Resolves to {drift, recalibrate: bool}.
   */
  async runDrift(settings) {
    this.open();
    try {
      this.root.append(h('div', { class: 'gaze-cal-hint' }, 'Drift check: look at the blue dot.'));
      const [x, y] = toPixels([DRIFT_POINT], window.innerWidth, window.innerHeight)[0];
      const predictions = await this.look(x, y, 'drift-point');
      const result = accuracy([{ target: [x, y], predictions }], settings, window.screen.width);
      const drift = { checked_at: new Date().toISOString(), error_px: result.mean_px, error_deg: result.mean_deg,
        samples: result.samples };
      if (!needsRecalibration(result, settings)) return { drift, recalibrate: false };
      const choice = await this.verdict(result, settings, 'Drift check');
      return { drift, recalibrate: choice === 'recalibrate' };
    } finally {
      this.close();
    }
  }
}

export { pxToDeg };
