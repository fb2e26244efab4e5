// Overlays drawn over the image by ImageViewer (ctx in CSS px; positions from image px).

import { imageToCanvas } from './transform.js';

/** Colour map for heat values in [0, 1]: transparent at 0, then blue -> green -> yellow -> red. */
export function heatColor(v) {
  const t = Math.min(1, Math.max(0, v));
  const stops = [[0, 0, 255], [0, 255, 0], [255, 255, 0], [255, 0, 0]];
  const pos = t * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(pos));
  const f = pos - i;
  const c = stops[i].map((a, k) => Math.round(a + (stops[i + 1][k] - a) * f));
  return [c[0], c[1], c[2], Math.round(255 * Math.min(1, t * 1.5))];
}

/** Render a heatmap grid (rows of values in [0, 1]) into a small canvas, one pixel per cell. */
export function heatmapBitmap(values) {
  const rows = values.length;
  const cols = rows ? values[0].length : 0;
  const canvas = document.createElement('canvas');
  canvas.width = Math.max(1, cols);
  canvas.height = Math.max(1, rows);
  if (!rows || !cols) return canvas;
  const img = new ImageData(cols, rows);
  for (let r = 0; r < rows; r += 1) {
    for (let c = 0; c < cols; c += 1) {
      const [red, green, blue, alpha] = heatColor(values[r][c]);
      const j = 4 * (r * cols + c);
      img.data[j] = red; img.data[j + 1] = green; img.data[j + 2] = blue; img.data[j + 3] = alpha;
    }
  }
  canvas.getContext('2d').putImageData(img, 0, 0);
  return canvas;
}

/**
 * Overlay of a heatmap stretched over the whole image.
 * @param {{values: number[][]}} heatmap  as from GET .../heatmap
 * @param {() => {visible: boolean, opacity: number}} settings
 */
export function heatmapOverlay(heatmap, settings) {
  const bitmap = heatmapBitmap(heatmap.values);
  return (ctx, viewer) => {
    const { visible, opacity } = settings();
    if (!visible) return;
    const a = imageToCanvas(viewer.view, 0, 0);
    ctx.save();
    ctx.globalAlpha = opacity;
    ctx.imageSmoothingEnabled = true;
    ctx.drawImage(bitmap, a.x, a.y, viewer.imageW * viewer.view.zoom, viewer.imageH * viewer.view.zoom);
    ctx.restore();
  };
}

/**
 * Overlay of a scanpath up to the playback time: a fading trail and the current gaze point.
 * @param {{t: Float64Array, x: Float64Array, y: Float64Array, ok: Uint8Array}} path  time-sorted
 * @param {() => {visible: boolean, time: number, trailMs: number}} settings
 */
export function scanpathOverlay(path, settings) {
  return (ctx, viewer) => {
    const { visible, time, trailMs } = settings();
    if (!visible || !path.t.length) return;
    const end = upperBound(path.t, time);
    const start = upperBound(path.t, time - trailMs);
    ctx.save();
    ctx.lineWidth = 1.5;
    let prev = null;
    for (let i = start; i < end; i += 1) {
      if (!path.ok[i]) { prev = null; continue; }
      const p = imageToCanvas(viewer.view, path.x[i], path.y[i]);
      if (prev) {
        const age = (time - path.t[i]) / trailMs;
        ctx.strokeStyle = `rgba(80, 200, 255, ${Math.max(0.1, 1 - age).toFixed(3)})`;
        ctx.beginPath();
        ctx.moveTo(prev.x, prev.y);
        ctx.lineTo(p.x, p.y);
        ctx.stroke();
      }
      prev = p;
    }
    const last = end - 1;
    if (last >= 0 && path.ok[last] && time - path.t[last] < 250) {
      const p = imageToCanvas(viewer.view, path.x[last], path.y[last]);
      ctx.fillStyle = 'rgba(255, 80, 80, 0.9)';
      ctx.beginPath();
      ctx.arc(p.x, p.y, 6, 0, 2 * Math.PI);
      ctx.fill();
    }
    ctx.restore();
  };
}

/** First index whose value is > x in a sorted array. */
export function upperBound(arr, x) {
  let lo = 0;
  let hi = arr.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (arr[mid] <= x) lo = mid + 1; else hi = mid;
  }
  return lo;
}

/**
 * Overlay of regions marked on the image (a data set's anatomy boxes, abnormality ellipses, chest
 * box): boxes as rectangles, ellipses inscribed in their box, each with its label.
 * @param {{shape: string, label: string, x0: number, y0: number, x1: number, y1: number}[]} annotations
 *   in image px, as from GET /api/cases/{id}/annotations
 * @param {() => {visible: boolean}} settings
 */
export function annotationOverlay(annotations, settings) {
  return (ctx, viewer) => {
    if (!settings().visible || !annotations.length) return;
    ctx.save();
    ctx.lineWidth = 2;
    ctx.font = '12px sans-serif';
    ctx.textBaseline = 'bottom';
    for (const a of annotations) {
      const p = imageToCanvas(viewer.view, a.x0, a.y0);
      const q = imageToCanvas(viewer.view, a.x1, a.y1);
      const color = a.shape === 'ellipse' ? 'rgba(255, 170, 0, 0.95)' : 'rgba(0, 220, 140, 0.9)';
      ctx.strokeStyle = color;
      ctx.fillStyle = color;
      ctx.beginPath();
      if (a.shape === 'ellipse') {
        ctx.ellipse((p.x + q.x) / 2, (p.y + q.y) / 2, Math.abs(q.x - p.x) / 2, Math.abs(q.y - p.y) / 2, 0, 0, 2 * Math.PI);
      } else {
        ctx.rect(p.x, p.y, q.x - p.x, q.y - p.y);
      }
      ctx.stroke();
      ctx.fillText(a.label, p.x + 2, p.y - 2);
    }
    ctx.restore();
  };
}
