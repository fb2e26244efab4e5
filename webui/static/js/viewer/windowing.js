// Window/level on stored pixel values: pure functions, no DOM.
//
// Stored values are unsigned integers (uint16 from GET /api/cases/{id}/pixels); the modality
// value is stored * scale + offset. A window (center, width) in modality units maps to 0..255 with
// DICOM's LINEAR function (PS3.3 C.11.2.1.2; LINEAR_EXACT below width 1), the same function the
// server uses for its rendered PNGs, then is optionally inverted (MONOCHROME1 images).

/** Parse the body and headers of GET /api/cases/{id}/pixels. */
export function parsePixels(buffer, headers) {
  const width = Number(headers.get('X-Image-Width'));
  const height = Number(headers.get('X-Image-Height'));
  const offset = Number(headers.get('X-Value-Offset') ?? 0);
  const scale = Number(headers.get('X-Value-Scale') ?? 1);
  if (!(width > 0 && height > 0)) throw new Error('pixel response without image size');
  // Little-endian uint16 on the wire; DataView keeps this correct on big-endian hosts too.
  const n = buffer.byteLength / 2;
  const view = new DataView(buffer);
  const values = new Uint16Array(n);
  for (let i = 0; i < n; i += 1) values[i] = view.getUint16(2 * i, true);
  const channels = Math.round(n / (width * height));
  if (channels < 1 || channels * width * height !== n) {
    throw new Error(`pixel response has ${n} values for ${width}x${height}`);
  }
  return { width, height, channels, offset, scale, values };
}

/** Largest stored value (sizes the lookup table). */
export function maxValue(values) {
  let max = 0;
  for (let i = 0; i < values.length; i += 1) if (values[i] > max) max = values[i];
  return max;
}

/**
 * Lookup table stored value -> display byte for one window.
 * @returns {Uint8Array} length maxStored + 1
 */
export function windowLut(maxStored, offset, scale, center, width, invert = false) {
  const lut = new Uint8Array(maxStored + 1);
  for (let s = 0; s <= maxStored; s += 1) {
    let y = displayUnit(s * scale + offset, center, width);
    y = Math.round(y * 255);
    lut[s] = invert ? 255 - y : y;
  }
  return lut;
}

/** DICOM window function: modality value -> [0, 1]. */
export function displayUnit(value, center, width) {
  const y = width > 1 ? (value - (center - 0.5)) / (width - 1) + 0.5 : (value - center) / width + 0.5;
  return y < 0 ? 0 : y > 1 ? 1 : y;
}

/**
 * Render stored values into an RGBA buffer through a lookup table.
 * @param {Uint16Array} values  H*W*channels stored values (1 = grey, 3 = RGB, 4 = RGBA)
 * @param {Uint8ClampedArray} rgba  H*W*4 output
 */
export function applyLut(values, channels, lut, rgba) {
  const n = rgba.length / 4;
  if (channels === 1) {
    for (let i = 0, j = 0; i < n; i += 1, j += 4) {
      const d = lut[values[i]];
      rgba[j] = d; rgba[j + 1] = d; rgba[j + 2] = d; rgba[j + 3] = 255;
    }
  } else {
    for (let i = 0, j = 0, k = 0; i < n; i += 1, j += 4, k += channels) {
      rgba[j] = lut[values[k]]; rgba[j + 1] = lut[values[k + 1]]; rgba[j + 2] = lut[values[k + 2]];
      rgba[j + 3] = 255;
    }
  }
  return rgba;
}

/**
 * New window after a right-drag of (dx, dy) CSS px: horizontal changes the width, vertical the
 * centre, proportionally to the value range so the feel is the same for 8-bit and 16-bit data.
 */
export function dragWindow(win, dx, dy, valueRange) {
  const k = Math.max(valueRange, 1) / 512;
  return { center: win.center + dy * k, width: Math.max(k / 8, win.width + dx * k) };
}
