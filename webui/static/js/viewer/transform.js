// Viewport transform between image pixels and CSS pixels: pure functions, no DOM.
//
// A view is {zoom, panX, panY}: image pixel (ix, iy) is drawn at canvas CSS position
// (panX + ix * zoom, panY + iy * zoom). Image pixel coordinates follow the sample contract:
// x = column, y = row, and (0, 0) is the top-left corner of the top-left pixel, so the centre of
// pixel (c, r) is (c + 0.5, r + 0.5).

export const MIN_ZOOM = 0.02;
export const MAX_ZOOM = 64;

/** The view that shows the whole image centred in a canvas of viewW x viewH CSS px. */
export function fitView(imageW, imageH, viewW, viewH, margin = 0) {
  const availW = Math.max(1, viewW - 2 * margin);
  const availH = Math.max(1, viewH - 2 * margin);
  const zoom = clampZoom(Math.min(availW / imageW, availH / imageH));
  return { zoom, panX: (viewW - imageW * zoom) / 2, panY: (viewH - imageH * zoom) / 2 };
}

export function clampZoom(zoom) {
  return Math.min(MAX_ZOOM, Math.max(MIN_ZOOM, zoom));
}

/**
 * Zoom by `factor` keeping the image point under canvas position (cx, cy) fixed.
 * The factor is reduced when the zoom limits would be crossed.
 */
export function zoomAt(view, factor, cx, cy) {
  const zoom = clampZoom(view.zoom * factor);
  const k = zoom / view.zoom;
  return { zoom, panX: cx - (cx - view.panX) * k, panY: cy - (cy - view.panY) * k };
}

export function panBy(view, dx, dy) {
  return { zoom: view.zoom, panX: view.panX + dx, panY: view.panY + dy };
}

/** Canvas CSS position -> image pixel coordinates. */
export function canvasToImage(view, cx, cy) {
  return { x: (cx - view.panX) / view.zoom, y: (cy - view.panY) / view.zoom };
}

/** Image pixel coordinates -> canvas CSS position. */
export function imageToCanvas(view, ix, iy) {
  return { x: view.panX + ix * view.zoom, y: view.panY + iy * view.zoom };
}

/**
 * Viewport (client) CSS position -> image pixels, given the canvas' client rectangle
 * ({left, top} as from getBoundingClientRect()).
 */
export function screenToImage(view, canvasRect, sx, sy) {
  return canvasToImage(view, sx - canvasRect.left, sy - canvasRect.top);
}

export function imageToScreen(view, canvasRect, ix, iy) {
  const p = imageToCanvas(view, ix, iy);
  return { x: p.x + canvasRect.left, y: p.y + canvasRect.top };
}

/** The whole image's rectangle in viewport CSS px (it may extend past the canvas when zoomed in). */
export function imageScreenRect(view, canvasRect, imageW, imageH) {
  return {
    left: canvasRect.left + view.panX,
    top: canvasRect.top + view.panY,
    width: imageW * view.zoom,
    height: imageH * view.zoom,
  };
}

/**
 * Whether a viewport position shows image content: inside the image and inside the canvas
 * (a point outside the canvas cannot be looking at the image even if the image extends there).
 */
export function isOnImage(view, canvasRect, imageW, imageH, sx, sy) {
  const cx = sx - canvasRect.left;
  const cy = sy - canvasRect.top;
  if (cx < 0 || cy < 0 || cx >= canvasRect.width || cy >= canvasRect.height) return false;
  const p = canvasToImage(view, cx, cy);
  return p.x >= 0 && p.y >= 0 && p.x < imageW && p.y < imageH;
}

/** A view kept usable: at least `keep` CSS px of the image stay inside the canvas. */
export function constrainView(view, imageW, imageH, viewW, viewH, keep = 32) {
  const w = imageW * view.zoom;
  const h = imageH * view.zoom;
  const minX = Math.min(keep, w) - w;
  const minY = Math.min(keep, h) - h;
  const maxX = viewW - Math.min(keep, w);
  const maxY = viewH - Math.min(keep, h);
  return {
    zoom: view.zoom,
    panX: Math.min(maxX, Math.max(minX, view.panX)),
    panY: Math.min(maxY, Math.max(minY, view.panY)),
  };
}

/**
 * Keep the image point at the canvas centre fixed when the canvas is resized from
 * (oldW, oldH) to (newW, newH); the zoom is unchanged.
 */
export function resizeView(view, oldW, oldH, newW, newH) {
  return { zoom: view.zoom, panX: view.panX + (newW - oldW) / 2, panY: view.panY + (newH - oldH) / 2 };
}
