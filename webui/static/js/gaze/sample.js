// The 18-column gaze sample of docs/gaze-protocol.md, built from a screen sample and the viewer
// state that was current when it was taken. Pure: no DOM.

import { imageScreenRect, isOnImage, screenToImage } from '../viewer/transform.js';

export const COLUMNS = Object.freeze([
  't_ms', 'screen_x', 'screen_y', 'image_x', 'image_y', 'flags', 'zoom', 'pan_x', 'pan_y',
  'wl_center', 'wl_width', 'img_left', 'img_top', 'img_width', 'img_height', 'screen_w', 'screen_h', 'dpr',
]);

export const FLAG_VALID = 1;
export const FLAG_ON_IMAGE = 2;
export const FLAG_VISIBLE = 4;
export const FLAG_EYE_GAZE = 8;

/** Column index by name, e.g. COL.image_x === 3. */
export const COL = Object.freeze(Object.fromEntries(COLUMNS.map((name, i) => [name, i])));

/**
 * One sample row.
 *
 * @param {{t: number, x: number, y: number, valid: boolean}} s  screen sample (viewport CSS px)
 * @param {object} state  viewer state: {view: {zoom, panX, panY}, canvasRect: {left, top, width,
 *   height} (viewport CSS px), imageW, imageH, wl: {center, width}, dpr, visible, isEyeGaze}
 * @param {number} tMs  session clock time of the sample (ms)
 * @returns {number[]} 18 finite numbers in COLUMNS order
 */
export function buildSample(s, state, tMs) {
  const { view, canvasRect, imageW, imageH, wl } = state;
  const hasPoint = Boolean(s.valid) && Number.isFinite(s.x) && Number.isFinite(s.y);
  let flags = 0;
  let sx = -1;
  let sy = -1;
  let ix = -1;
  let iy = -1;
  if (hasPoint) {
    flags |= FLAG_VALID;
    sx = s.x;
    sy = s.y;
    // Off-image points keep their mapped coordinates (which may be negative or past the
    // edge): they are flagged, not dropped or clamped.
    const p = screenToImage(view, canvasRect, sx, sy);
    ix = p.x;
    iy = p.y;
    if (isOnImage(view, canvasRect, imageW, imageH, sx, sy)) flags |= FLAG_ON_IMAGE;
  }
  if (state.visible) flags |= FLAG_VISIBLE;
  if (state.isEyeGaze) flags |= FLAG_EYE_GAZE;
  const rect = imageScreenRect(view, canvasRect, imageW, imageH);
  const row = [
    tMs, sx, sy, ix, iy, flags, view.zoom, view.panX, view.panY, wl.center, wl.width,
    rect.left, rect.top, rect.width, rect.height, canvasRect.width, canvasRect.height, state.dpr,
  ];
  // The server rejects non-finite numbers; a broken number here is a bug, not data.
  for (let i = 0; i < row.length; i += 1) {
    if (!Number.isFinite(row[i])) throw new Error(`sample column ${COLUMNS[i]} is not finite`);
  }
  return row;
}
