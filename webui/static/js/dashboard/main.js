// Admin dashboard: picks the dataset, loads every panel and keeps them fresh.

import { api, el } from '../api.js';
import { initJobs, loadJobs, setOnFinished } from './jobs.js';
import { loadModels } from './models.js';
import { loadSecondRead } from './second-read.js';
import { loadGaze, loadPairs } from './stats.js';
import { initPacsForm } from './pacs.js';
import { applyDatasetSettings, initTrainForm } from './train.js';

const STATS_REFRESH_MS = 10_000;
const JOBS_REFRESH_MS = 5_000;
const STORAGE_KEY = 'mcgip.dashboard.dataset';

const select = document.getElementById('dataset-select');
const status = document.getElementById('dash-status');
let datasetId = null;

function report(what, err) {
  status.textContent = `${what}: ${err.message}`;
  console.error(what, err);
}

async function guarded(what, load) {
  try {
    return await load();
  } catch (err) {
    report(what, err);
    return null;
  }
}

async function refreshStats() {
  if (datasetId === null) return;
  await Promise.all([
    guarded('gaze statistics', () => loadGaze(datasetId)),
    guarded('pair statistics', () => loadPairs(datasetId, document.getElementById('pair-metric').value)),
  ]);
  status.textContent = `Updated ${new Date().toLocaleTimeString()}`;
}

async function refreshAll({ autoFollow = false } = {}) {
  if (datasetId === null) return;
  await Promise.all([
    refreshStats(),
    guarded('jobs', () => loadJobs(datasetId, { autoFollow })),
    guarded('model versions', () => loadModels(datasetId)),
    guarded('second read', () => loadSecondRead(datasetId)),
  ]);
}

async function init() {
  const datasets = await api('/api/datasets');
  select.replaceChildren(...datasets.map((d) => el('option', { value: d.id }, d.name)));
  const wanted = new URLSearchParams(window.location.search).get('dataset') || localStorage.getItem(STORAGE_KEY);
  if (wanted && datasets.some((d) => String(d.id) === wanted)) select.value = wanted;
  datasetId = datasets.length ? Number(select.value) : null;
  if (datasetId === null) {
    status.textContent = 'No datasets yet.';
    return;
  }
  const settingsOf = (id) => (datasets.find((d) => d.id === id) || {}).settings;
  applyDatasetSettings(settingsOf(datasetId));
  select.addEventListener('change', () => {
    datasetId = Number(select.value);
    applyDatasetSettings(settingsOf(datasetId));
    localStorage.setItem(STORAGE_KEY, String(datasetId));
    refreshAll({ autoFollow: true });
  });
  document.getElementById('pair-metric').addEventListener('change', () =>
    guarded('pair statistics', () => loadPairs(datasetId, document.getElementById('pair-metric').value)));
  initJobs();
  setOnFinished(() => refreshAll());
  initTrainForm(() => datasetId, () => guarded('jobs', () => loadJobs(datasetId)));
  initPacsForm(() => datasetId, () => guarded('jobs', () => loadJobs(datasetId)));
  await refreshAll({ autoFollow: true });
  setInterval(refreshStats, STATS_REFRESH_MS);
  setInterval(() => guarded('jobs', () => loadJobs(datasetId)), JOBS_REFRESH_MS);
}

init().catch((err) => report('dashboard', err));
