// Model card panel: the version's card (GET /api/models/{id}/card) as readable sections: data and
// labels, the diagnosis head and its calibration, cross-validated metrics with 95% CIs against the
// baseline and the verdict, intended use, limitations, and "not for clinical use".

import { api, el } from '../api.js';

const METRICS = ['head.accuracy', 'head.balanced_accuracy', 'head.macro_auc', 'head.ece'];

function fmt(v) {
  return typeof v === 'number' && Number.isFinite(v) ? v.toFixed(3) : 'n/a';
}

function withCi(x) {
  if (!x || x.value === null || x.value === undefined) return 'n/a';
  return `${fmt(x.value)} [${fmt(x.ci_low)}, ${fmt(x.ci_high)}]`;
}

function evaluationSection(ev) {
  if (!ev) return el('p', { class: 'muted' }, 'No cross-validated evaluation recorded.');
  if (ev.status !== 'ok') {
    return el('p', { class: 'muted' }, `Not evaluated: ${(ev.problems || []).join('; ')}`);
  }
  const names = Object.keys(ev.conditions || {});
  const table = el('table', { class: 'metrics', 'data-testid': 'card-metrics' },
    el('tr', {}, el('th', {}, `metric (95% CI), n=${ev.n_cases}, ${ev.n_repeats ?? 1} × ${ev.n_folds}-fold`),
      ...names.map((n) => el('th', {}, n))),
    ...METRICS.map((m) => el('tr', {}, el('th', {}, m),
      ...names.map((n) => el('td', {}, withCi((ev.conditions[n] || {})[m]))))));
  const diffs = Object.entries(ev.differences || {}).map(([cond, d]) => {
    const x = d[ev.primary_metric] || {};
    return el('li', {}, `${cond} − baseline, ${ev.primary_metric}: ${withCi(x)}, p = ${fmt(x.p_value)}`);
  });
  const paired = (ev.protocol || {}).paired;
  return el('div', {}, table, el('ul', {}, ...diffs),
    paired ? el('p', { class: 'muted', 'data-testid': 'card-paired' }, `Differences: ${paired}.`) : null,
    el('p', { 'data-testid': 'card-verdict' }, el('strong', {}, `Verdict: ${ev.verdict}`), ` — ${ev.verdict_text || ''}`));
}

export function renderCard(card) {
  const diag = card.diagnosis || {};
  const counts = (card.snapshot && card.snapshot.counts) || {};
  const cal = diag.calibration || {};
  const head = diag.available
    ? el('ul', {},
      el('li', {}, `Labels: ${(diag.labels || []).join(', ')}`),
      el('li', {}, `Fitted on ${(diag.head || {}).n_train} labelled training cases`),
      el('li', { 'data-testid': 'card-calibration' }, diag.calibration_note || ''),
      el('li', {}, `ECE before / after calibration (cross-validated): ${withCi(cal.cv_ece_before)} / ${withCi(cal.cv_ece_after)}`))
    : el('p', { class: 'muted' }, `No diagnosis head: ${(diag.problems || []).join('; ') || 'not fitted for this version'}`);
  return el('article', { class: 'model-card' },
    el('h3', {}, `Model card · ${card.name || 'mcgip'} · v${(card.registry || {}).version ?? '?'}`),
    el('p', { class: 'error', 'data-testid': 'card-clinical' }, card.clinical_use || 'NOT FOR CLINICAL USE'),
    el('h4', {}, 'Data and labels'),
    el('p', {}, `${counts.cases ?? '?'} cases (${counts.labelled ?? '?'} labelled), ${counts.sessions ?? '?'} reading sessions, `
      + `${counts.readers ?? '?'} readers, ${counts.positives ?? '?'} gaze-positive pairs; method ${card.method}, ${card.backbone}`),
    el('h4', {}, 'Diagnosis head'), head,
    el('h4', {}, 'Cross-validated metrics vs the no-gaze baseline'), evaluationSection(diag.evaluation),
    el('h4', {}, 'Intended use'), el('p', {}, card.intended_use || ''),
    el('h4', {}, 'Limitations'), el('ul', {}, ...(card.limitations || []).map((x) => el('li', {}, x))));
}

export async function showCard(modelId) {
  const box = document.getElementById('model-card');
  box.replaceChildren(el('p', { class: 'muted' }, 'Loading the model card…'));
  box.hidden = false;
  try {
    box.replaceChildren(renderCard(await api(`/api/models/${modelId}/card`)));
  } catch (err) {
    box.replaceChildren(el('p', { class: 'error' }, `Model card failed: ${err.message}`));
  }
}
