// AI second read: after the reader has submitted a diagnosis (gaze capture has ended), and only when
// the dataset has it on, show the active model's calibrated probabilities and ask the reader to agree,
// disagree or amend. The reader's own diagnosis is never changed; an amendment is stored beside it.

import { api, el } from '../api.js';

const panel = document.getElementById('second-read');

function bars(probabilities, modelLabel) {
  const rows = Object.entries(probabilities).sort((a, b) => b[1] - a[1]);
  return el('table', { class: 'metrics', 'data-testid': 'second-read-probabilities' },
    ...rows.map(([label, p]) => el('tr', { 'data-label': label, class: label === modelLabel ? 'better' : '' },
      el('th', {}, label),
      el('td', {}, `${(p * 100).toFixed(1)}%`),
      el('td', {}, el('meter', { min: '0', max: '1', value: String(p) })))));
}

async function decide(sessionId, choice, amended, status) {
  status.textContent = 'Saving…';
  try {
    const saved = await api(`/api/sessions/${sessionId}/second-read`, {
      method: 'PUT', json: amended ? { choice, amended_label: amended } : { choice },
    });
    status.textContent = saved.choice === 'amend'
      ? `Saved: amended to ${saved.amended_label} (your original diagnosis ${saved.reader_label} is kept).`
      : `Saved: you ${saved.choice} with the model.`;
    status.dataset.choice = saved.choice;
  } catch (err) {
    status.textContent = `Could not save: ${err.message}`;
  }
}

function render(read, labels) {
  const status = el('p', { role: 'status', class: 'muted', 'data-testid': 'second-read-status' });
  const select = el('select', { 'data-testid': 'second-read-amend-label' },
    ...labels.map((l) => el('option', { value: l }, l)));
  panel.replaceChildren(
    el('h3', {}, 'AI second read'),
    el('p', { class: 'error' }, read.clinical_use || 'NOT FOR CLINICAL USE'),
    el('p', {}, 'Your diagnosis: ', el('strong', {}, read.reader_label), ' · model: ',
      el('strong', { 'data-testid': 'second-read-label' }, read.label)),
    bars(read.probabilities, read.label),
    el('p', { class: 'muted' }, read.calibration || ''),
    el('div', { class: 'second-read-actions' },
      el('button', { type: 'button', 'data-testid': 'second-read-agree', onclick: () => decide(read.session_id, 'agree', null, status) }, 'Agree'),
      el('button', { type: 'button', 'data-testid': 'second-read-disagree', onclick: () => decide(read.session_id, 'disagree', null, status) }, 'Disagree'),
      el('label', {}, ' Amend to ', select),
      el('button', { type: 'button', 'data-testid': 'second-read-amend', onclick: () => decide(read.session_id, 'amend', select.value, status) }, 'Amend')),
    status);
  if (read.choice) status.textContent = `Saved earlier: ${read.choice}${read.amended_label ? ` (${read.amended_label})` : ''}.`;
  panel.hidden = false;
}

async function onSubmitted(event) {
  const { sessionId, caseId } = event.detail;
  const c = await api(`/api/cases/${caseId}`);
  const dataset = await api(`/api/datasets/${c.dataset_id}`);
  if (!dataset.settings || !dataset.settings.second_read) return;
  panel.hidden = false;
  panel.replaceChildren(el('p', { class: 'muted' }, 'Asking the model…'));
  try {
    render(await api(`/api/sessions/${sessionId}/second-read`, { method: 'POST' }), dataset.label_set);
  } catch (err) {
    panel.replaceChildren(el('p', { class: 'muted', 'data-testid': 'second-read-unavailable' },
      `AI second read unavailable: ${err.message}`));
  }
}

if (panel) document.addEventListener('mcgip:diagnosis-submitted', (e) => { onSubmitted(e); });
