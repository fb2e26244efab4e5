// Calibration geometry and accuracy arithmetic for eye-gaze sources. Pure: no DOM.
//
// Accuracy is reported in CSS px and in degrees of visual angle. Degrees need the physical
// screen width (mm) and the viewing distance (mm): one CSS px is screen_mm_w / screen_w_css mm,
// and an error of e mm seen from d mm subtends 2·atan(e / 2d).

/** 9 calibration targets as fractions of the viewport (3 × 3 grid, 10 % from the edges). */
export const CALIBRATION_POINTS = Object.freeze([
  [0.1, 0.1], [0.5, 0.1], [0.9, 0.1],
  [0.1, 0.5], [0.5, 0.5], [0.9, 0.5],
  [0.1, 0.9], [0.5, 0.9], [0.9, 0.9],
]);

/** Validation targets: between the calibration targets, so validation is not a replay of training. */
export const VALIDATION_POINTS = Object.freeze([
  [0.3, 0.3], [0.7, 0.3], [0.5, 0.5], [0.3, 0.7], [0.7, 0.7],
]);

/** The single target of the quick drift check between cases. */
export const DRIFT_POINT = Object.freeze([0.5, 0.5]);

export const DEFAULT_SETTINGS = Object.freeze({
  screen_mm_w: 530, // a 24-inch 16:9 monitor
  distance_mm: 650, // a typical reading distance
  bound_deg: 5, // recalibrate when the mean validation error is worse than this
});

/** Fraction-of-viewport targets to CSS px. */
export function toPixels(points, width, height) {
  return points.map(([fx, fy]) => [fx * width, fy * height]);
}

/**
 * Degrees of visual angle of an error in CSS px.
 * @param {number} px
 * @param {{screen_mm_w: number, distance_mm: number}} settings
 * @param {number} screenWidthCss  window.screen.width (CSS px)
 */
export function pxToDeg(px, settings, screenWidthCss) {
  if (!(settings.screen_mm_w > 0 && settings.distance_mm > 0 && screenWidthCss > 0)) return NaN;
  const mm = (px * settings.screen_mm_w) / screenWidthCss;
  return (2 * Math.atan(mm / (2 * settings.distance_mm)) * 180) / Math.PI;
}

function round(value, digits) {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/**
 * Accuracy over validation targets.
 *
 * Each target's error is the mean distance of its predictions from it; the summary is the mean
 * and the max of those per-target errors. Targets without any prediction count as missing.
 *
 * @param {Array<{target: [number, number], predictions: Array<[number, number]>}>} trials
 * @param {object} settings  {screen_mm_w, distance_mm}
 * @param {number} screenWidthCss
 * @returns {{mean_px, max_px, mean_deg, max_deg, points: Array, missing: number, samples: number}}
 */
export function accuracy(trials, settings, screenWidthCss) {
  const points = [];
  let missing = 0;
  let samples = 0;
  for (const { target, predictions } of trials) {
    if (!predictions.length) {
      missing += 1;
      points.push({ x: target[0], y: target[1], error_px: null, n: 0 });
      continue;
    }
    const errors = predictions.map(([x, y]) => Math.hypot(x - target[0], y - target[1]));
    const error = errors.reduce((a, b) => a + b, 0) / errors.length;
    samples += predictions.length;
    points.push({ x: round(target[0], 1), y: round(target[1], 1), error_px: round(error, 1), n: predictions.length });
  }
  const measured = points.filter((p) => p.error_px !== null).map((p) => p.error_px);
  const meanPx = measured.length ? measured.reduce((a, b) => a + b, 0) / measured.length : NaN;
  const maxPx = measured.length ? Math.max(...measured) : NaN;
  return {
    mean_px: round(meanPx, 1),
    max_px: round(maxPx, 1),
    mean_deg: round(pxToDeg(meanPx, settings, screenWidthCss), 2),
    max_deg: round(pxToDeg(maxPx, settings, screenWidthCss), 2),
    points,
    missing,
    samples,
  };
}

/** Whether a result is worse than the bound (missing targets count as failing). */
export function needsRecalibration(result, settings) {
  if (!result || result.missing > 0 || !Number.isFinite(result.mean_deg)) return true;
  return result.mean_deg > settings.bound_deg;
}

/** Settings validated and completed with defaults. */
export function normaliseSettings(raw) {
  const out = { ...DEFAULT_SETTINGS };
  for (const key of Object.keys(DEFAULT_SETTINGS)) {
    const value = Number(raw && raw[key]);
    if (Number.isFinite(value) && value > 0) out[key] = value;
  }
  return out;
}

/** "123 px", or "n/a" for a missing or non-finite value (never "NaN px"). */
export function formatPx(px) {
  return typeof px === 'number' && Number.isFinite(px) ? `${px.toFixed(0)} px` : 'n/a';
}

/** "2.1°", or "n/a" for a missing or non-finite value. */
export function formatDeg(deg) {
  return typeof deg === 'number' && Number.isFinite(deg) ? `${deg.toFixed(1)}°` : 'n/a';
}
