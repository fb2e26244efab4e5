// Retraining form: the server checks the fields (POST /api/dashboard/retrain-plan; 422 messages
// are shown next to the field they name), then the planned job is queued with POST /api/jobs.

import { api, ApiError } from '../api.js';
import { fieldErrors } from './format.js';
import { follow } from './jobs.js';

const FIELDS = ['method', 'backbone', 'metric', 'threshold', 'epochs', 'advanced'];

function clearErrors(form) {
  for (const name of FIELDS) {
    form.querySelector(`[data-error-for="${name}"]`).textContent = '';
    form.elements[name].closest('.field').classList.remove('invalid');
  }
  const general = document.getElementById('train-error');
  general.hidden = true;
  general.textContent = '';
}

function showErrors(form, detail) {
  const grouped = fieldErrors(detail, FIELDS);
  for (const [name, messages] of Object.entries(grouped.fields)) {
    form.querySelector(`[data-error-for="${name}"]`).textContent = messages.join('; ');
    const field = form.elements[name].closest('.field');
    field.classList.add('invalid');
    if (field.tagName === 'DETAILS') field.open = true;
  }
  if (grouped.other.length) {
    const general = document.getElementById('train-error');
    general.textContent = grouped.other.join('; ');
    general.hidden = false;
  }
}

function numberOrRaw(value) {
  // Send what was typed: an empty or malformed number is the server's to reject, next to the field.
  const trimmed = value.trim();
  return trimmed !== '' && Number.isFinite(Number(trimmed)) ? Number(trimmed) : trimmed;
}

function readForm(form, datasetId) {
  const body = {
    dataset_id: datasetId,
    method: form.elements.method.value,
    backbone: form.elements.backbone.value,
    metric: form.elements.metric.value,
    threshold: numberOrRaw(form.elements.threshold.value),
    epochs: numberOrRaw(form.elements.epochs.value),
  };
  const advanced = form.elements.advanced.value.trim();
  if (advanced) {
    try {
      body.advanced = JSON.parse(advanced);
    } catch (err) {
      return { error: [{ loc: ['body', 'advanced'], msg: `not valid JSON (${err.message})` }] };
    }
  }
  return { body };
}

/** Start the form from the dataset's settings (GET /api/datasets: its pair metric and threshold). */
export function applyDatasetSettings(settings) {
  const form = document.getElementById('train-form');
  if (!settings || !form) return;
  form.elements.metric.value = settings.metric;
  form.elements.threshold.value = String(settings.threshold);
}

/** Wire the form; `getDataset()` returns the selected dataset id, `onQueued(job)` runs after queueing. */
export function initTrainForm(getDataset, onQueued) {
  const form = document.getElementById('train-form');
  const plan = document.getElementById('train-plan');
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form);
    plan.textContent = '';
    const { body, error } = readForm(form, getDataset());
    if (error) {
      showErrors(form, error);
      return;
    }
    const button = form.querySelector('button[type=submit]');
    button.disabled = true;
    try {
      const planned = await api('/api/dashboard/retrain-plan', { method: 'POST', json: body });
      plan.textContent = `${planned.steps} steps of ${planned.images_per_step} images over `
        + `${planned.training_cases} training cases.`;
      let job;
      try {
        job = await api('/api/jobs', { method: 'POST', json: planned.job });
      } catch (err) {
        // One retrain per dataset at a time: follow the one already running instead.
        if (!(err instanceof ApiError) || err.status !== 409) throw err;
        const running = await api(`/api/jobs?dataset_id=${body.dataset_id}&kind=retrain&state=running&limit=1`);
        const queued = await api(`/api/jobs?dataset_id=${body.dataset_id}&kind=retrain&state=queued&limit=1`);
        job = running.items[0] || queued.items[0];
        showErrors(form, err.detail);
        if (!job) return;
      }
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
