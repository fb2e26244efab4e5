// The measuring ruler: a segment in image pixels, its length in mm where the image's pixel spacing is
// known (DICOM PixelSpacing / ImagerPixelSpacing), in pixels otherwise, always with its unit.

import { imageToCanvas } from './transform.js';

/**
 * Length of a segment.
 * @param {{x: number, y: number}} a  image px
 * @param {{x: number, y: number}} b  image px
 * @param {number[]|null} spacing  [row spacing, column spacing] in mm (DICOM order: between rows = y)
 * @returns {{value: number, unit: 'mm'|'px', text: string}}
 */
export function rulerLength(a, b, spacing) {
  const dx = b.x - a.x;
  const dy = b.y - a.y;
  if (Array.isArray(spacing) && spacing.length === 2 && spacing.every((v) => Number.isFinite(v) && v > 0)) {
    const value = Math.hypot(dx * spacing[1], dy * spacing[0]);
    return { value, unit: 'mm', text: `${value.toFixed(1)} mm` };
  }
  const value = Math.hypot(dx, dy);
  return { value, unit: 'px', text: `${value.toFixed(1)} px (no pixel spacing)` };
}

/** Draw the ruler (ctx in CSS px) with its length next to the end point. */
export function drawRuler(ctx, view, ruler, text) {
  const a = imageToCanvas(view, ruler.a.x, ruler.a.y);
  const b = imageToCanvas(view, ruler.b.x, ruler.b.y);
  ctx.save();
  ctx.lineWidth = 2;
  ctx.strokeStyle = '#4affb4';
  ctx.beginPath();
  ctx.moveTo(a.x, a.y);
  ctx.lineTo(b.x, b.y);
  ctx.stroke();
  for (const p of [a, b]) {
    ctx.beginPath();
    ctx.arc(p.x, p.y, 3, 0, 2 * Math.PI);
    ctx.stroke();
  }
  ctx.font = '13px system-ui, sans-serif';
  const w = ctx.measureText(text).width;
  ctx.fillStyle = 'rgba(0, 0, 0, .7)';
  ctx.fillRect(b.x + 6, b.y - 16, w + 8, 20);
  ctx.fillStyle = '#4affb4';
  ctx.fillText(text, b.x + 10, b.y - 1);
  ctx.restore();
}
