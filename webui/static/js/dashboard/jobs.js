// Jobs panel: recent jobs of the dataset, and one followed job with live progress over SSE
// (GET /api/jobs/{id}/events) drawing its loss and learning-rate curves.

import { api, el } from '../api.js';
import { lineChart } from './charts.js';
import {
  evaluationSeries, fmtEta, fmtNumber, fmtPercent, fmtTime, historySeries,
} from './format.js';

const TERMINAL = new Set(['succeeded', 'failed', 'cancelled']);
let source = null;
let followedId = null;
let onFinished = () => {};

/** Called with the job when a followed job ends (the page reloads models and statistics). */
export function setOnFinished(callback) {
  onFinished = callback;
}

function progressBar(fraction, small = false) {
  const bar = el('div', { class: 'bar' });
  bar.style.width = fmtPercent(fraction);
  return el('div', { class: small ? 'progress small' : 'progress' }, bar);
}

function detailText(job) {
  const info = job.progress_info || {};
  const parts = [];
  if (info.phase) parts.push(info.phase);
  if (info.run) parts.push(`run ${info.run}`);
  if (info.step !== undefined && info.total_steps) parts.push(`step ${info.step}/${info.total_steps}`);
  if (typeof info.loss === 'number') parts.push(`loss ${fmtNumber(info.loss, 4)}`);
  if (typeof info.lr === 'number') parts.push(`lr ${info.lr.toExponential(2)}`);
  const eta = fmtEta(info.eta_s);
  if (job.state === 'running' && eta && info.phase === 'train') parts.push(eta);
  if (job.result && job.result.version !== undefined) parts.push(`model version ${job.result.version}`);
  return parts.join(' · ');
}

/** Show one job in the live panel (exported for tests that replay recorded job states). */
export function showLive(job) {
  document.getElementById('job-live').hidden = false;
  document.getElementById('job-live-id').textContent = `#${job.id}`;
  document.getElementById('job-live-kind').textContent = job.kind;
  const state = document.getElementById('job-live-state');
  state.textContent = job.state;
  state.className = `state-${job.state}`;
  document.getElementById('job-live-bar').style.width = fmtPercent(job.progress);
  document.getElementById('job-live-progress').textContent = fmtPercent(job.progress);
  document.getElementById('job-live-detail').textContent = detailText(job);
  const error = document.getElementById('job-live-error');
  error.hidden = !job.error;
  error.textContent = job.error || '';
  document.getElementById('job-live-log').textContent = job.log_tail || '';
  document.getElementById('job-live-cancel').hidden = TERMINAL.has(job.state);
  const series = historySeries((job.progress_info || {}).history);
  if (series.length) {
    lineChart('chart-loss', series.map((s) => ({ label: s.run, data: s.points.loss })));
    lineChart('chart-lr', series.map((s) => ({ label: s.run, data: s.points.lr })));
  }
  const evaluations = evaluationSeries((job.progress_info || {}).evaluations);
  document.getElementById('chart-eval-figure').hidden = !evaluations.length;
  if (evaluations.length) lineChart('chart-eval', evaluations, { points: true });
}

function stop() {
  if (source) source.close();
  source = null;
}

/** Follow one job: its state, progress and curves update as the server sends changes. */
export function follow(jobId) {
  stop();
  followedId = jobId;
  const events = new EventSource(`/api/jobs/${jobId}/events`);
  source = events;
  events.addEventListener('job', (event) => {
    if (followedId === jobId) showLive(JSON.parse(event.data));
  });
  events.addEventListener('end', async () => {
    events.close();
    if (source === events) source = null;
    const job = await api(`/api/jobs/${jobId}`);
    if (followedId === jobId) showLive(job);
    onFinished(job);
  });
  events.addEventListener('gone', () => events.close());
}

export async function cancelFollowed() {
  if (followedId === null) return;
  const job = await api(`/api/jobs/${followedId}/cancel`, { method: 'POST' });
  showLive(job);
}

export async function loadJobs(datasetId, { autoFollow = false } = {}) {
  const page = await api(`/api/jobs?dataset_id=${datasetId}&limit=20`);
  const body = document.querySelector('#jobs-table tbody');
  body.replaceChildren(...page.items.map((job) => el('tr', { 'data-job-id': job.id },
    el('td', {}, `#${job.id}`),
    el('td', {}, job.kind),
    el('td', { class: `state-${job.state}` }, job.state),
    el('td', {}, progressBar(job.progress, true), ` ${fmtPercent(job.progress)}`),
    el('td', {}, fmtTime(job.created_at)),
    el('td', {}, el('button', { type: 'button', onclick: () => follow(job.id) }, 'Follow')))));
  if (autoFollow && followedId === null) {
    const active = page.items.find((job) => !TERMINAL.has(job.state) && job.kind === 'retrain');
    if (active) follow(active.id);
  }
  return page.items;
}

export function initJobs() {
  document.getElementById('job-live-cancel').addEventListener('click', () => cancelFollowed());
  window.addEventListener('beforeunload', stop);
}
