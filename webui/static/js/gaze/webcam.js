// Webcam eye gaze with WebGazer (served locally; works offline). Samples carry flag bit 8 (eye
// gaze) and are invalid when WebGazer has no prediction (no face found).
//
// start(): camera check (clear message + fallback to another source when it fails), WebGazer
// start, its click/move learning switched off (reading clicks must not train the model), then a
// full calibration when this browser has none that meets the bound, else a quick drift check.
// Calibration, validation and drift results are stored with the reading session
// (PATCH /api/sessions/{id} source_info) and shown to the reader in a small badge.

import { api } from '../api.js';
import {
  CalibrationOverlay, loadCalibration, loadSettings,
} from './calibration.js';
import { needsRecalibration } from './accuracy.js';
import { GazeSource, registerSource } from './source.js';
import { CameraError, checkCamera, loadWebGazer, releaseCamera } from './webgazer-loader.js';

/** The reading page's saved source choice (see reading/sources.js). */
const PREF_KEY = 'mcgip.gazeSource';
const FACE_TIMEOUT_MS = 60000;

const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

/** A message over the page with a way out to another source. */
export function showCameraProblem(message, fallbackKind = 'mouse') {
  document.querySelector('.gaze-problem')?.remove();
  const box = document.createElement('div');
  box.className = 'gaze-problem';
  box.setAttribute('role', 'alert');
  box.dataset.testid = 'camera-problem';
  const text = document.createElement('p');
  text.textContent = message;
  const fallback = document.createElement('button');
  fallback.type = 'button';
  fallback.dataset.testid = 'camera-fallback';
  fallback.textContent = `Use the ${fallbackKind} instead`;
  fallback.addEventListener('click', () => {
    window.localStorage.setItem(PREF_KEY, fallbackKind);
    const url = new URL(window.location.href);
    url.searchParams.set('source', fallbackKind);
    window.location.href = url.toString();
  });
  const retry = document.createElement('button');
  retry.type = 'button';
  retry.textContent = 'Try again';
  retry.addEventListener('click', () => window.location.reload());
  box.append(text, fallback, retry);
  const link = document.createElement('link');
  link.rel = 'stylesheet';
  link.href = '/static/css/gaze-calibration.css';
  document.head.append(link);
  document.body.append(box);
  return box;
}

export class WebcamSource extends GazeSource {
  static kind = 'webcam';

  static isEyeGaze = true;

  static needsUserStart = true;

  /** @param {{sessionId?: number, calibrate?: 'auto'|'always'|'drift', fallbackKind?: string}} options */
  constructor(options = {}) {
    super(options);
    this.wg = null;
    this.overlay = null;
    this.details = { library: 'webgazer', regression: 'ridge' };
    this.badge = null;
    this.emitting = false;
    this.faceSeen = false;
    this.cameraChecked = false;
  }

  info() {
    return this.details;
  }

  sessionId() {
    return this.options.sessionId ?? (window.mcgip && window.mcgip.session && window.mcgip.session.id);
  }

  /** Store details with the session (merged into source_info). */
  async persist(patch) {
    Object.assign(this.details, patch);
    this.dispatchEvent(new CustomEvent('info', { detail: patch }));
    const id = this.sessionId();
    if (!id) return;
    try {
      await api(`/api/sessions/${id}`, { method: 'PATCH', json: { source_info: patch } });
    } catch (err) {
      console.warn('could not store calibration with the session', err);
    }
  }

  async preflight() {
    try {
      await checkCamera();
      this.cameraChecked = true;
    } catch (err) {
      const message = err instanceof CameraError ? err.message : String(err);
      showCameraProblem(message, this.options.fallbackKind || 'mouse');
      throw new Error(message);
    }
  }

  async start() {
    if (this.running) return;
    const step = (text) => this.dispatchEvent(new CustomEvent('progress', { detail: text }));
    step('opening the camera…');
    if (!this.cameraChecked) await this.preflight();
    step('loading the face tracker (up to a minute the first time)…');
    this.wg = await loadWebGazer();
    this.wg.setGazeListener((data) => this.onPrediction(data));
    await this.wg.begin(() => showCameraProblem('The camera could not be started.'));
    // WebGazer learns from every click and mouse move by default; readers click while reading.
    this.wg.removeMouseEventListeners();
    this.wg.showVideoPreview(true);
    step('looking for your face…');
    await this.waitForFace();
    step('calibration…');
    await this.calibrateOrCheck();
    this.wg.showVideoPreview(false);
    this.emitting = true;
    this.running = true;
    this.showBadge();
  }

  async waitForFace() {
    const start = performance.now();
    while (performance.now() - start < FACE_TIMEOUT_MS) {
      const tracker = this.wg.getTracker && this.wg.getTracker();
      const positions = tracker && typeof tracker.getPositions === 'function' && tracker.getPositions();
      if (positions && positions.length) { this.faceSeen = true; return; }
      await sleep(200);
    }
    // Not fatal: calibration shows whether predictions arrive; samples stay invalid meanwhile.
    console.warn('no face found yet');
  }

  onPrediction(data) {
    const x = data ? data.x : NaN;
    const y = data ? data.y : NaN;
    if (this.overlay) this.overlay.feed(x, y);
    if (!this.emitting) return;
    const valid = Boolean(data) && Number.isFinite(x) && Number.isFinite(y);
    this.emit(performance.now(), valid ? x : -1, valid ? y : -1, valid);
  }

  /** Full calibration when needed (or asked), else the quick drift check. */
  async calibrateOrCheck(mode = this.options.calibrate || 'auto') {
    const settings = loadSettings();
    const stored = loadCalibration();
    const haveModel = typeof this.wg.getStoredPoints !== 'function'
      || (this.wg.getStoredPoints()[0] || []).length > 0
      || (this.wg.getRegression && this.wg.getRegression()[0] && this.wg.getRegression()[0].getData
        && this.wg.getRegression()[0].getData().length > 0);
    const full = mode === 'always' || !stored || !haveModel || needsRecalibration(stored.validation, stored.settings);
    this.overlay = new CalibrationOverlay({ webgazer: this.wg, ...(this.options.overlay || {}) });
    try {
      if (!full) {
        const { drift, recalibrate } = await this.overlay.runDrift(settings);
        await this.persist({ calibration: stored, drift_check: drift });
        if (!recalibrate) return;
      }
      const calibration = await this.overlay.runFull(settings, { askSettings: true });
      await this.persist({ calibration, drift_check: null });
    } finally {
      this.overlay = null;
    }
  }

  /** Recalibrate in the middle of reading (from the badge). */
  async recalibrate() {
    this.emitting = false;
    try {
      await this.calibrateOrCheck('always');
    } finally {
      this.emitting = this.running;
      this.showBadge();
    }
  }

  showBadge() {
    this.badge?.remove();
    const v = this.details.calibration && this.details.calibration.validation;
    const d = this.details.drift_check;
    const bad = !v || needsRecalibration(v, (this.details.calibration || {}).settings || loadSettings());
    const badge = document.createElement('div');
    badge.className = `gaze-badge${bad ? ' bad' : ''}`;
    badge.dataset.testid = 'webcam-accuracy';
    const fmt = (x) => (Number.isFinite(x) ? `${x.toFixed(1)}°` : 'n/a');
    badge.textContent = v ? `Webcam accuracy ${fmt(v.mean_deg)} mean, ${fmt(v.max_deg)} max`
      + (d ? ` · drift ${fmt(d.error_deg)}` : '') : 'Webcam not calibrated';
    const button = document.createElement('button');
    button.type = 'button';
    button.textContent = 'Recalibrate';
    button.addEventListener('click', () => { this.recalibrate(); });
    badge.append(button);
    document.body.append(badge);
    this.badge = badge;
  }

  async stop() {
    this.emitting = false;
    this.running = false;
    this.badge?.remove();
    if (this.wg) {
      this.wg.clearGazeListener();
      releaseCamera();
      try { this.wg.end(); } catch (err) { console.warn('webgazer end failed', err); }
    }
  }
}

registerSource(WebcamSource);
