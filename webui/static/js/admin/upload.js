// Admin console, bulk upload: a folder (webkitdirectory) or zip archives into a dataset's cases,
// then the server's result for every file (stored, duplicate, refused and why).

import { api, el } from '../api.js';
import { clearErrors, showErrors } from '../forms.js';

const form = document.getElementById('upload-form');
const statusLine = document.getElementById('upload-status');

function chosenFiles() {
  const files = [];
  // A folder's files keep their path inside the folder as their name (shown in the result table).
  for (const f of document.getElementById('upload-folder').files) files.push([f, f.webkitRelativePath || f.name]);
  for (const f of document.getElementById('upload-files').files) files.push([f, f.name]);
  return files;
}

function resultRow(r) {
  const caseCell = r.case_id ? el('a', { href: `/cases/${r.case_id}` }, `#${r.case_id}`)
    : r.duplicate_of ? el('a', { href: `/cases/${r.duplicate_of}` }, `#${r.duplicate_of}`) : '';
  return el('tr', { 'data-outcome': r.outcome, 'data-name': r.name },
    el('td', {}, r.name), el('td', { class: `outcome-${r.outcome}` }, r.outcome),
    el('td', {}, caseCell), el('td', {}, r.reason || ''));
}

form.addEventListener('submit', async (e) => {
  e.preventDefault();
  clearErrors(form);
  const files = chosenFiles();
  if (!files.length) {
    showErrors(form, new Error('Choose a folder, a zip or images first.'));
    return;
  }
  const body = new FormData();
  body.append('dataset_id', new FormData(form).get('dataset_id'));
  for (const [file, name] of files) body.append('files', file, name);
  const button = form.querySelector('button[type=submit]');
  button.disabled = true;
  statusLine.textContent = `Uploading ${files.length} file${files.length === 1 ? '' : 's'}…`;
  try {
    const out = await api('/api/cases/bulk', { method: 'POST', body });
    const table = document.getElementById('upload-result');
    table.querySelector('tbody').replaceChildren(...out.files.map(resultRow));
    table.hidden = false;
    statusLine.textContent = `${out.stored} stored, ${out.duplicates} duplicate, ${out.refused} refused.`;
  } catch (err) {
    statusLine.textContent = '';
    showErrors(form, err);
  } finally {
    button.disabled = false;
  }
});

(async () => {
  const datasets = await api('/api/datasets');
  document.getElementById('upload-dataset').replaceChildren(...datasets.map((d) => el('option', { value: d.id }, d.name)));
  form.dataset.state = 'ready';
})();
