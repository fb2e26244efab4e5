// The tag panel: the de-identified attributes McGIP stored for the case's image (never the file's PHI).

import { el } from '../api.js';

const IMAGE_FIELDS = [
  ['format', 'Format'], ['modality', 'Modality'], ['width', 'Columns'], ['height', 'Rows'],
  ['bits_stored', 'Bits stored'], ['photometric', 'Photometric'], ['window_center', 'Window center'],
  ['window_width', 'Window width'], ['value_scale', 'Rescale slope'], ['value_offset', 'Rescale intercept'],
];

function show(value) {
  if (value === null || value === undefined) return '—';
  if (Array.isArray(value)) return value.map(show).join(' \\ ');
  if (typeof value === 'object') return Object.entries(value).map(([k, v]) => `${k} ${show(v)}`).join(', ');
  if (typeof value === 'number') return Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(6)));
  return String(value);
}

/** Rows [name, text] for a case's image: the stored image fields, then its metadata keys. */
export function tagRows(image) {
  const rows = IMAGE_FIELDS.filter(([key]) => image[key] !== undefined && image[key] !== null)
    .map(([key, name]) => [name, show(image[key])]);
  for (const [key, value] of Object.entries(image.meta || {}).sort(([a], [b]) => a.localeCompare(b))) {
    rows.push([key.replace(/_/g, ' '), show(value)]);
  }
  return rows;
}

export function renderTags(container, image) {
  container.replaceChildren(...tagRows(image).flatMap(([name, text]) => [el('dt', {}, name), el('dd', {}, text)]));
}
