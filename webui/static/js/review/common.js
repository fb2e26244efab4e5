// Shared pieces of the review pages.

import { api, ApiError, el } from '../api.js';
import { annotationOverlay, heatmapOverlay } from '../viewer/overlays.js';

export function sessionRow(s, { withCase = true } = {}) {
  return el('tr', { dataset: { sessionId: s.id } },
    el('td', {}, el('a', { href: `/review/sessions/${s.id}` }, s.id)),
    withCase ? el('td', {}, el('a', { href: `/review/cases/${s.case_id}` }, `case ${s.case_id}`)) : null,
    el('td', {}, s.reader_name || `user ${s.reader_id}`),
    el('td', {}, s.source),
    el('td', {}, s.quality_flag && !s.quality_override ? `${s.status} (flagged: ${s.quality_flag})` : s.status),
    el('td', {}, s.sample_count),
    el('td', {}, s.label ? s.label.label : ''),
    withCase ? el('td', {}, new Date(s.started_at).toLocaleString()) : null);
}

/** Wire the heatmap checkbox and opacity slider to an overlay on the viewer. */
export function bindHeatmap(viewer, heatmap) {
  const show = document.getElementById('show-heat');
  const opacity = document.getElementById('heat-opacity');
  viewer.overlays.unshift(heatmapOverlay(heatmap, () => ({ visible: show.checked, opacity: Number(opacity.value) / 100 })));
  show.addEventListener('change', () => viewer.requestRender());
  opacity.addEventListener('input', () => viewer.requestRender());
  document.getElementById('heat-info').textContent =
    `${heatmap.sessions} session${heatmap.sessions === 1 ? '' : 's'}, ${heatmap.samples} on-image samples`;
  viewer.requestRender();
}

/**
 * Wire the annotations checkbox to an overlay of the case's annotations (admins only: readers get
 * 403 and the control stays hidden).
 */
export async function bindAnnotations(viewer, caseId) {
  const box = document.getElementById('annotation-controls');
  const show = document.getElementById('show-annotations');
  let annotations;
  try {
    annotations = await api(`/api/cases/${caseId}/annotations`);
  } catch (err) {
    if (err instanceof ApiError && (err.status === 403 || err.status === 404)) return [];
    throw err;
  }
  if (!annotations.length) return annotations;
  box.hidden = false;
  document.getElementById('annotation-info').textContent =
    `${annotations.length} region${annotations.length === 1 ? '' : 's'} (${[...new Set(annotations.map((a) => a.source))].join(', ')})`;
  viewer.overlays.push(annotationOverlay(annotations, () => ({ visible: show.checked })));
  show.addEventListener('change', () => viewer.requestRender());
  viewer.requestRender();
  return annotations;
}
