// Canvas image viewer: fit, zoom around the cursor, pan, window/level, finding box, overlays.
// Sharp at any devicePixelRatio (the backing store is CSS size x dpr) and any window size.

import {
  canvasToImage, constrainView, fitView, imageToCanvas, imageToScreen, panBy, resizeView, zoomAt,
} from './transform.js';
import { applyLut, dragWindow, maxValue, parsePixels, windowLut } from './windowing.js';
import { drawRuler, rulerLength } from './ruler.js';

const WHEEL_ZOOM = 0.0015; // zoom factor per wheel pixel: exp(-deltaY * WHEEL_ZOOM)

export class ImageViewer extends EventTarget {
  /**
   * @param {HTMLElement} container  sized by CSS; the canvas fills it
   * @param {{interactive?: boolean}} options
   */
  constructor(container, options = {}) {
    super();
    this.container = container;
    this.canvas = document.createElement('canvas');
    this.canvas.className = 'viewer-canvas';
    this.canvas.setAttribute('data-testid', 'viewer-canvas');
    this.canvas.tabIndex = 0;
    container.append(this.canvas);
    this.ctx = this.canvas.getContext('2d');
    this.image = null; // {width, height, channels, offset, scale, values, maxStored}
    this.bitmap = document.createElement('canvas'); // windowed image at native resolution
    this.view = { zoom: 1, panX: 0, panY: 0 };
    this.wl = { center: 127.5, width: 255 };
    this.defaults = { center: 127.5, width: 255, invert: false };
    this.invert = false;
    this.tool = 'pan';
    this.box = null; // finding box in image px {x0, y0, x1, y1}
    this.ruler = null; // measurement {a: {x, y}, b: {x, y}} in image px
    this.spacing = null; // [row, column] mm per pixel when the image says
    this.overlays = [];
    this.cssW = 0;
    this.cssH = 0;
    this.dpr = window.devicePixelRatio || 1;
    this.needsWindow = true;
    this.frame = 0;
    this.resizeObserver = new ResizeObserver(() => this.resize());
    this.resizeObserver.observe(container);
    this.watchDpr();
    if (options.interactive !== false) this.bindPointer();
    this.resize();
  }

  // ---- loading --------------------------------------------------------------------------------

  /**
   * Load a case's stored pixels (any bit depth) for browser-side window/level.
   * @param {number} caseId
   * @param {object} info  the case's `image` (window_center, window_width, invert, width, height)
   */
  async load(caseId, info) {
    this.defaults = { center: info.window_center, width: info.window_width, invert: Boolean(info.invert) };
    this.spacing = (info.meta && info.meta.pixel_spacing_mm) || null;
    const res = await fetch(`/api/cases/${caseId}/pixels`, { credentials: 'same-origin' });
    if (!res.ok) throw new Error(`image pixels: HTTP ${res.status}`);
    const px = parsePixels(await res.arrayBuffer(), res.headers);
    px.maxStored = maxValue(px.values);
    this.image = px;
    this.bitmap.width = px.width;
    this.bitmap.height = px.height;
    this.rgba = new ImageData(px.width, px.height);
    this.reset();
    this.dispatchEvent(new Event('load'));
  }

  get imageW() { return this.image ? this.image.width : 1; }

  get imageH() { return this.image ? this.image.height : 1; }

  /** Range of modality values in the image (drives the window/level drag speed). */
  get valueRange() {
    if (!this.image) return 255;
    return Math.abs(this.image.maxStored * this.image.scale) || 255;
  }

  // ---- state changes ---------------------------------------------------------------------------

  fit() {
    this.setView(fitView(this.imageW, this.imageH, this.cssW, this.cssH, 8));
  }

  /** Fit, the case's default window, no inversion and no ruler. */
  reset() {
    this.wl = { center: this.defaults.center, width: this.defaults.width };
    this.invert = this.defaults.invert;
    this.ruler = null;
    this.needsWindow = true;
    this.fit();
    this.dispatchEvent(new CustomEvent('rulerchange', { detail: null }));
  }

  /** The ruler's length ({value, unit, text}) or null without a ruler. */
  get rulerLength() {
    return this.ruler ? rulerLength(this.ruler.a, this.ruler.b, this.spacing) : null;
  }

  setRuler(ruler) {
    this.ruler = ruler;
    this.changed();
    this.dispatchEvent(new CustomEvent('rulerchange', { detail: ruler }));
  }

  setView(view) {
    this.view = constrainView(view, this.imageW, this.imageH, this.cssW, this.cssH);
    this.changed();
  }

  zoomBy(factor, cx = this.cssW / 2, cy = this.cssH / 2) {
    this.setView(zoomAt(this.view, factor, cx, cy));
  }

  /** One image pixel per CSS pixel, keeping the canvas centre fixed. */
  actualSize() {
    this.zoomBy(1 / this.view.zoom);
  }

  panBy(dx, dy) {
    this.setView(panBy(this.view, dx, dy));
  }

  setWindow(center, width) {
    this.wl = { center, width: Math.max(width, 1e-6) };
    this.needsWindow = true;
    this.changed();
  }

  toggleInvert() {
    this.invert = !this.invert;
    this.needsWindow = true;
    this.changed();
  }

  setTool(tool) {
    this.tool = tool;
    this.canvas.dataset.tool = tool;
    this.dispatchEvent(new CustomEvent('toolchange', { detail: tool }));
  }

  setBox(box) {
    this.box = box;
    this.changed();
    this.dispatchEvent(new CustomEvent('boxchange', { detail: box }));
  }

  changed() {
    this.dispatchEvent(new Event('viewchange'));
    this.requestRender();
  }

  // ---- coordinates -----------------------------------------------------------------------------

  canvasRect() {
    const r = this.canvas.getBoundingClientRect();
    return { left: r.left, top: r.top, width: r.width, height: r.height };
  }

  /** Viewer state that a gaze sample records (see gaze/sample.js). */
  sampleState() {
    return {
      view: this.view,
      canvasRect: this.canvasRect(),
      imageW: this.imageW,
      imageH: this.imageH,
      wl: this.wl,
      dpr: this.dpr,
    };
  }

  imageToScreen(ix, iy) {
    return imageToScreen(this.view, this.canvasRect(), ix, iy);
  }

  eventToImage(event) {
    const r = this.canvas.getBoundingClientRect();
    return canvasToImage(this.view, event.clientX - r.left, event.clientY - r.top);
  }

  // ---- size and pixel ratio --------------------------------------------------------------------

  resize() {
    const r = this.container.getBoundingClientRect();
    const w = Math.max(1, r.width);
    const h = Math.max(1, r.height);
    const first = this.cssW === 0;
    const oldW = this.cssW;
    const oldH = this.cssH;
    this.cssW = w;
    this.cssH = h;
    this.canvas.style.width = `${w}px`;
    this.canvas.style.height = `${h}px`;
    this.updateBackingStore();
    if (this.image && !first) this.setView(resizeView(this.view, oldW, oldH, w, h));
    else this.requestRender();
  }

  updateBackingStore() {
    this.dpr = window.devicePixelRatio || 1;
    this.canvas.width = Math.max(1, Math.round(this.cssW * this.dpr));
    this.canvas.height = Math.max(1, Math.round(this.cssH * this.dpr));
  }

  watchDpr() {
    // A resolution media query fires once when the ratio changes (browser zoom, moving the window
    // to another monitor); re-arm it for the new ratio each time.
    const query = window.matchMedia(`(resolution: ${window.devicePixelRatio || 1}dppx)`);
    const onChange = () => {
      this.updateBackingStore();
      this.changed();
      this.watchDpr();
    };
    query.addEventListener('change', onChange, { once: true });
  }

  // ---- pointer ---------------------------------------------------------------------------------

  bindPointer() {
    const c = this.canvas;
    c.addEventListener('wheel', (e) => {
      e.preventDefault();
      const unit = e.deltaMode === 1 ? 16 : e.deltaMode === 2 ? this.cssH : 1;
      const r = c.getBoundingClientRect();
      this.zoomBy(Math.exp(-e.deltaY * unit * WHEEL_ZOOM), e.clientX - r.left, e.clientY - r.top);
    }, { passive: false });
    c.addEventListener('contextmenu', (e) => e.preventDefault());
    c.addEventListener('pointerdown', (e) => this.onPointerDown(e));
    c.addEventListener('dblclick', () => this.fit());
  }

  onPointerDown(e) {
    if (!this.image) return;
    const mode = e.button === 2 ? 'wl' : e.button === 0 ? this.tool : null;
    if (!mode) return;
    e.preventDefault();
    this.canvas.focus({ preventScroll: true });
    this.canvas.setPointerCapture(e.pointerId);
    let lastX = e.clientX;
    let lastY = e.clientY;
    const start = this.eventToImage(e);
    const move = (ev) => {
      const dx = ev.clientX - lastX;
      const dy = ev.clientY - lastY;
      lastX = ev.clientX;
      lastY = ev.clientY;
      if (mode === 'pan') this.panBy(dx, dy);
      else if (mode === 'wl') {
        const next = dragWindow(this.wl, dx, dy, this.valueRange);
        this.setWindow(next.center, next.width);
      } else if (mode === 'box') this.draftBox = this.clampBox(start, this.eventToImage(ev));
      else if (mode === 'ruler') this.ruler = { a: start, b: this.eventToImage(ev) };
      this.requestRender();
    };
    const up = (ev) => {
      this.canvas.removeEventListener('pointermove', move);
      this.canvas.removeEventListener('pointerup', up);
      this.canvas.removeEventListener('pointercancel', up);
      if (mode === 'box') {
        const box = this.clampBox(start, this.eventToImage(ev));
        this.draftBox = null;
        if (box.x1 - box.x0 >= 2 && box.y1 - box.y0 >= 2) this.setBox(box);
        else this.requestRender();
      } else if (mode === 'ruler') {
        const end = this.eventToImage(ev);
        this.setRuler(Math.hypot(end.x - start.x, end.y - start.y) > 0 ? { a: start, b: end } : null);
      }
    };
    this.canvas.addEventListener('pointermove', move);
    this.canvas.addEventListener('pointerup', up);
    this.canvas.addEventListener('pointercancel', up);
  }

  clampBox(a, b) {
    const cx = (v) => Math.min(this.imageW, Math.max(0, v));
    const cy = (v) => Math.min(this.imageH, Math.max(0, v));
    return {
      x0: Math.round(cx(Math.min(a.x, b.x))), y0: Math.round(cy(Math.min(a.y, b.y))),
      x1: Math.round(cx(Math.max(a.x, b.x))), y1: Math.round(cy(Math.max(a.y, b.y))),
    };
  }

  // ---- drawing ---------------------------------------------------------------------------------

  requestRender() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.render();
    });
  }

  /** Re-window the native-resolution bitmap (only after a window/level or invert change). */
  rewindow() {
    const px = this.image;
    const lut = windowLut(px.maxStored, px.offset, px.scale, this.wl.center, this.wl.width, this.invert);
    applyLut(px.values, px.channels, lut, this.rgba.data);
    this.bitmap.getContext('2d').putImageData(this.rgba, 0, 0);
    this.needsWindow = false;
  }

  render() {
    const { ctx, dpr } = this;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = '#000';
    ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
    if (!this.image) return;
    if (this.needsWindow) this.rewindow();
    const { zoom, panX, panY } = this.view;
    ctx.setTransform(dpr * zoom, 0, 0, dpr * zoom, dpr * panX, dpr * panY);
    // Magnified pixels stay crisp squares, as radiologists expect when zooming in.
    ctx.imageSmoothingEnabled = zoom * dpr < 2;
    ctx.drawImage(this.bitmap, 0, 0);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    for (const draw of this.overlays) draw(ctx, this);
    const box = this.draftBox || this.box;
    if (box) this.strokeImageRect(box, this.draftBox ? '#ffd24a' : '#ff9f1a');
    if (this.ruler) drawRuler(ctx, this.view, this.ruler, this.rulerLength.text);
  }

  /** Stroke a rectangle given in image px (overlay helper; ctx in CSS px). */
  strokeImageRect(box, color) {
    const a = imageToCanvas(this.view, box.x0, box.y0);
    const b = imageToCanvas(this.view, box.x1, box.y1);
    this.ctx.strokeStyle = color;
    this.ctx.lineWidth = 2;
    this.ctx.setLineDash([6, 4]);
    this.ctx.strokeRect(a.x, a.y, b.x - a.x, b.y - a.y);
    this.ctx.setLineDash([]);
  }

  destroy() {
    this.resizeObserver.disconnect();
    cancelAnimationFrame(this.frame);
    this.canvas.remove();
  }
}
