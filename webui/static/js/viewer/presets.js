// Window/level presets for one image: its default window, the windows its DICOM file proposes, the
// common CT windows (Hounsfield units) for CT, and two data-driven ones. Pure functions, no DOM.

/** Common CT windows (center, width in HU), as radiology departments name them. */
export const CT_WINDOWS = [
  { name: 'Brain', center: 40, width: 80 },
  { name: 'Soft tissue', center: 50, width: 350 },
  { name: 'Lung', center: -600, width: 1500 },
  { name: 'Bone', center: 400, width: 1800 },
];

/**
 * Percentiles of stored values (sampled, at most ~65k values) mapped to modality units.
 * @param {{values: Uint16Array, channels: number, offset: number, scale: number}} px
 * @returns {{min: number, max: number, p01: number, p99: number}}
 */
export function valueStats(px) {
  const n = px.values.length / px.channels;
  const step = Math.max(1, Math.floor(n / 65536));
  const sample = [];
  for (let i = 0; i < n; i += step) sample.push(px.values[i * px.channels]);
  sample.sort((a, b) => a - b);
  const at = (q) => sample[Math.min(sample.length - 1, Math.floor(q * (sample.length - 1)))] * px.scale + px.offset;
  const lo = at(0);
  const hi = at(1);
  return { min: Math.min(lo, hi), max: Math.max(lo, hi), p01: Math.min(at(0.01), at(0.99)), p99: Math.max(at(0.01), at(0.99)) };
}

function windowOver(lo, hi) {
  const width = Math.max(hi - lo, 1);
  return { center: lo + width / 2, width };
}

/**
 * Presets for an image.
 * @param {object} image  the case's `image` (window_center, window_width, modality, meta)
 * @param {{min: number, max: number, p01: number, p99: number}|null} stats  from valueStats
 * @returns {Array<{id: string, name: string, center: number, width: number}>}
 */
export function windowPresets(image, stats) {
  const presets = [];
  const seen = new Set();
  const add = (id, name, center, width) => {
    if (!(Number.isFinite(center) && Number.isFinite(width) && width > 0)) return;
    const key = `${center.toFixed(3)}/${width.toFixed(3)}`;
    if (seen.has(key)) return;
    seen.add(key);
    presets.push({ id, name, center, width });
  };
  add('default', 'Default', image.window_center, image.window_width);
  const fromFile = (image.meta && image.meta.dicom_windows) || [];
  fromFile.forEach((w, i) => add(`dicom-${i}`, fromFile.length > 1 ? `DICOM window ${i + 1}` : 'DICOM window', w.center, w.width));
  if ((image.modality || (image.meta && image.meta.modality)) === 'CT') {
    for (const w of CT_WINDOWS) add(`ct-${w.name.toLowerCase().replace(' ', '-')}`, `CT ${w.name}`, w.center, w.width);
  }
  if (stats) {
    const full = windowOver(stats.min, stats.max);
    add('full', 'Full range', full.center, full.width);
    const auto = windowOver(stats.p01, stats.p99);
    add('auto', 'Auto (1st–99th percentile)', auto.center, auto.width);
  }
  return presets;
}

/** "L 40 W 400" with sensible precision for the value range. */
export function formatWindow(center, width) {
  const digits = Math.abs(width) < 10 ? 2 : 0;
  return `L ${center.toFixed(digits)} W ${width.toFixed(digits)}`;
}
