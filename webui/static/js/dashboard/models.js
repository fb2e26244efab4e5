// Model versions panel: metrics next to the no-gaze baseline and the previous version, promote /
// roll back, export downloads.

import { api, el } from '../api.js';
import { evidenceCell } from './evidence.js';
import { fmtNumber, fmtTime, metricRows } from './format.js';
import { showCard } from './model-card.js';

const EXPORT_NAMES = { onnx: 'ONNX', torchscript: 'TorchScript', safetensors: 'safetensors' };

function metricsTable(model, previous) {
  const rows = metricRows(model.metrics, previous ? previous.metrics : null);
  if (!rows.length) return el('span', { class: 'muted' }, 'not evaluated');
  // A reference cell is green when this version beats it, red when it falls short.
  const cell = (reference, value) => {
    let cls = '';
    if (reference !== null && value !== null && reference !== value) cls = value > reference ? 'better' : 'worse';
    return el('td', { class: cls }, fmtNumber(reference));
  };
  return el('table', { class: 'metrics' },
    ...rows.map((r) => el('tr', {},
      el('th', {}, r.name),
      el('td', {}, fmtNumber(r.value)),
      cell(r.baseline, r.value),
      cell(r.previous, r.value))));
}

function snapshotText(model) {
  const counts = (model.snapshot && model.snapshot.counts) || {};
  const parts = [];
  if (counts.cases !== undefined) parts.push(`${counts.cases} cases`);
  if (counts.positives !== undefined) parts.push(`${counts.positives} positives`);
  if (counts.sessions !== undefined) parts.push(`${counts.sessions} sessions`);
  return parts.join(', ');
}

async function promote(model, reload) {
  const error = document.getElementById('models-error');
  error.hidden = true;
  try {
    await api(`/api/models/${model.id}/promote`, { method: 'POST' });
  } catch (err) {
    error.textContent = `Promotion failed: ${err.message}`;
    error.hidden = false;
  }
  await reload();
}

export async function loadModels(datasetId) {
  const reload = () => loadModels(datasetId);
  const models = await api(`/api/models?dataset_id=${datasetId}`);
  const byId = new Map(models.map((m) => [m.id, m]));
  const byVersion = new Map(models.map((m) => [m.version, m]));
  const active = models.find((m) => m.is_active) || null;
  const body = document.querySelector('#models-table tbody');
  body.replaceChildren(...models.map((m) => {
    const previous = byId.get(m.parent_id) || byVersion.get(m.version - 1) || null;
    let status;
    if (m.is_active) {
      status = el('span', { class: 'badge', 'data-testid': `active-${m.id}` }, 'active');
    } else {
      const rollback = active !== null && m.version < active.version;
      status = el('button', {
        type: 'button', 'data-testid': `promote-${m.id}`, onclick: () => promote(m, reload),
      }, rollback ? `Roll back to v${m.version}` : 'Promote');
    }
    const exports = el('span', { class: 'exports' }, ...(m.exports || []).map((fmt) => el('a', {
      href: `/api/models/${m.id}/export?format=${fmt}`, download: '', 'data-testid': `export-${fmt}-${m.id}`,
    }, EXPORT_NAMES[fmt] || fmt)));
    return el('tr', { 'data-model-id': m.id, 'data-version': m.version },
      el('td', {}, `v${m.version}`, el('br'), el('span', { class: 'muted' }, fmtTime(m.created_at))),
      el('td', {}, `${m.method} · ${m.backbone}`),
      el('td', {}, snapshotText(m)),
      el('td', {}, metricsTable(m, previous)),
      el('td', {}, evidenceCell(m)),
      el('td', {}, status),
      el('td', {}, exports, el('br'), el('button', {
        type: 'button', 'data-testid': `card-${m.id}`, onclick: () => showCard(m.id),
      }, 'Model card')));
  }));
  document.getElementById('models-empty').hidden = models.length > 0;
  return models;
}
