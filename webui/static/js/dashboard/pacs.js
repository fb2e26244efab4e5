// PACS import form: queues a pacs-import job (POST /api/jobs) for the selected dataset; the server
// checks the parameters and its 422 messages are shown next to the field they name.

import { api, ApiError } from '../api.js';
import { fieldErrors } from './format.js';
import { follow } from './jobs.js';

const FIELDS = ['url', 'study_uids', 'modality', 'date_from', 'date_to', 'study_description'];

function clearErrors(form) {
  for (const name of FIELDS) form.querySelector(`[data-error-for="${name}"]`).textContent = '';
  const general = document.getElementById('pacs-error');
  general.hidden = true;
  general.textContent = '';
}

function showErrors(form, detail) {
  // Errors of the job's params arrive as ["body", "params", field, ...].
  const flat = Array.isArray(detail)
    ? detail.map((e) => ({ ...e, loc: ['body', ...(e.loc || []).filter((p) => p !== 'body' && p !== 'params')] }))
    : detail;
  const grouped = fieldErrors(flat, FIELDS);
  for (const [name, messages] of Object.entries(grouped.fields)) {
    form.querySelector(`[data-error-for="${name}"]`).textContent = messages.join('; ');
  }
  if (grouped.other.length) {
    const general = document.getElementById('pacs-error');
    general.textContent = grouped.other.join('; ');
    general.hidden = false;
  }
}

function readParams(form) {
  const params = {};
  for (const name of ['url', 'modality', 'date_from', 'date_to', 'study_description']) {
    const value = form.elements[name].value.trim();
    if (value) params[name] = value;
  }
  const uids = form.elements.study_uids.value.split(/\s+/).filter(Boolean);
  if (uids.length) params.study_uids = uids;
  return params;
}

/** Wire the form; `getDataset()` returns the selected dataset id, `onQueued(job)` runs after queueing. */
export function initPacsForm(getDataset, onQueued) {
  const form = document.getElementById('pacs-form');
  if (!form) return;
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form);
    const button = form.querySelector('button[type=submit]');
    button.disabled = true;
    try {
      const job = await api('/api/jobs', {
        method: 'POST',
        json: { kind: 'pacs-import', dataset_id: getDataset(), params: readParams(form) },
      });
      follow(job.id);
      onQueued(job);
    } catch (err) {
      if (err instanceof ApiError && err.status === 422) showErrors(form, err.detail);
      else showErrors(form, err.message);
    } finally {
      button.disabled = false;
    }
  });
}
