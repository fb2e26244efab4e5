import { api, el } from './api.js';

const view = document.getElementById('case-view');
const caseId = view.dataset.caseId;

async function load() {
  const c = await api(`/api/cases/${caseId}`);
  document.getElementById('case-title').textContent = c.title || `Case ${c.id}`;
  const meta = document.getElementById('case-meta');
  const rows = [['Dataset', c.dataset_name]];
  if (c.image) {
    rows.push(['Format', c.image.format], ['Size', `${c.image.width}×${c.image.height}`],
      ['Window', `${c.image.window_center} / ${c.image.window_width}`]);
    if (c.image.modality) rows.push(['Modality', c.image.modality]);
  }
  for (const [k, v] of rows) meta.append(el('dt', {}, k), el('dd', {}, v));
  document.getElementById('case-image').src = `/api/cases/${caseId}/image`;
}

load().catch((err) => { view.append(el('p', { class: 'error' }, err.message)); });
