// The calibration page: camera check, settings, 9-point calibration and validation, then back to
// the page the reader came from. The WebGazer model stays in this browser for the reading pages.

import { CalibrationOverlay, loadCalibration, loadSettings } from './gaze/calibration.js';
import { formatDeg, formatPx } from './gaze/accuracy.js';
import { showCameraProblem } from './gaze/webcam.js';
import { CameraError, checkCamera, loadWebGazer, releaseCamera } from './gaze/webgazer-loader.js';

const root = document.getElementById('calibrate');
const status = document.getElementById('calibrate-status');

function describe(calibration) {
  if (!calibration || !calibration.validation) return 'none';
  const v = calibration.validation;
  const when = calibration.calibrated_at ? new Date(calibration.calibrated_at).toLocaleString() : 'unknown time';
  return `${when}: mean ${formatPx(v.mean_px)} (${formatDeg(v.mean_deg)}), `
    + `max ${formatPx(v.max_px)} (${formatDeg(v.max_deg)})`;
}

async function run() {
  root.dataset.state = 'running';
  status.textContent = 'Opening the camera…';
  try {
    await checkCamera();
  } catch (err) {
    root.dataset.state = 'error';
    status.textContent = err instanceof CameraError ? err.message : String(err);
    showCameraProblem(status.textContent);
    return;
  }
  const wg = await loadWebGazer();
  const overlay = new CalibrationOverlay({ webgazer: wg });
  wg.setGazeListener((data) => overlay.feed(data ? data.x : NaN, data ? data.y : NaN));
  status.textContent = 'Starting the face tracker…';
  await wg.begin();
  wg.removeMouseEventListeners();
  try {
    const calibration = await overlay.runFull(loadSettings());
    document.getElementById('last-calibration').textContent = describe(calibration);
    status.textContent = calibration.below_bound ? 'Calibrated.' : 'Calibrated, but worse than the accuracy bound.';
    root.dataset.state = 'done';
    document.getElementById('continue-link').hidden = false;
  } finally {
    wg.clearGazeListener();
    releaseCamera();
    wg.end();
  }
}

document.getElementById('last-calibration').textContent = describe(loadCalibration());
document.getElementById('calibrate-btn').addEventListener('click', () => {
  run().catch((err) => {
    root.dataset.state = 'error';
    status.textContent = `Calibration failed: ${err.message}`;
  });
});
