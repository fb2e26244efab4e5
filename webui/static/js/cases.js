import { api, el } from './api.js';

const isAdmin = document.getElementById('cases-script').dataset.admin === 'true';
const PAGE = 25;
let offset = 0;
let total = 0;

async function loadDatasets() {
  const datasets = await api('/api/datasets');
  for (const select of document.querySelectorAll('#dataset-select, #filter-dataset')) {
    for (const d of datasets) select.append(el('option', { value: d.id }, d.name));
  }
}

function filters() {
  const form = new FormData(document.getElementById('filter-form'));
  const params = new URLSearchParams({ limit: PAGE, offset });
  for (const [k, v] of form) if (v) params.set(k, v);
  return params;
}

async function loadCases() {
  const page = await api(`/api/cases?${filters()}`);
  total = page.total;
  const body = document.querySelector('#case-table tbody');
  body.replaceChildren();
  for (const c of page.items) {
    const img = c.image;
    body.append(el('tr', { dataset: { caseId: c.id } },
      el('td', {}, el('img', { src: `/api/cases/${c.id}/thumbnail`, class: 'thumb', alt: '' })),
      el('td', {}, c.id),
      el('td', {}, el('a', { href: `/cases/${c.id}` }, c.title || `Case ${c.id}`)),
      el('td', {}, c.dataset_name),
      el('td', {}, img ? img.format : ''),
      el('td', {}, img ? `${img.width}×${img.height}` : ''),
      isAdmin ? el('td', {}, c.reference_label ?? '') : null,
      isAdmin ? el('td', {}, (c.assigned_reader_ids || []).join(', ')) : null));
  }
  document.getElementById('page-info').textContent =
    `${total ? offset + 1 : 0}–${Math.min(offset + PAGE, total)} of ${total}`;
}

document.getElementById('filter-form').addEventListener('submit', (e) => {
  e.preventDefault(); offset = 0; loadCases();
});
document.getElementById('prev-page').addEventListener('click', () => {
  offset = Math.max(0, offset - PAGE); loadCases();
});
document.getElementById('next-page').addEventListener('click', () => {
  if (offset + PAGE < total) { offset += PAGE; loadCases(); }
});

const uploadForm = document.getElementById('upload-form');
if (uploadForm) {
  uploadForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    const status = document.getElementById('upload-status');
    status.textContent = 'Uploading…';
    try {
      const created = await api('/api/cases', { method: 'POST', body: new FormData(uploadForm) });
      status.replaceChildren('Stored as ', el('a', { href: `/cases/${created.id}`, 'data-testid': 'uploaded-link' }, `case ${created.id}`));
      uploadForm.reset();
      loadCases();
    } catch (err) {
      status.textContent = `Upload failed (${err.status}): ${err.message}`;
    }
  });
}

loadDatasets().then(loadCases);
