// Gaze data and pair graph panels, drawn from /api/stats/gaze and /api/stats/pairs.

import { api, el } from '../api.js';
import { barChart } from './charts.js';
import { binLabels, fmtNumber, fmtPercent } from './format.js';

function fillStats(dl, entries) {
  dl.replaceChildren(...entries.flatMap(([name, value]) => [el('dt', {}, name), el('dd', {}, value)]));
}

function fillRows(tbody, rows) {
  tbody.replaceChildren(...rows.map((cells) => el('tr', {}, ...cells.map((c) => el('td', {}, c)))));
}

function caseLink(id, title) {
  return el('a', { href: `/review/cases/${id}` }, title || `Case ${id}`);
}

export async function loadGaze(datasetId) {
  const s = await api(`/api/stats/gaze?dataset_id=${datasetId}`);
  const t = s.totals;
  fillStats(document.getElementById('gaze-totals'), [
    ['Sessions', `${t.sessions} (${t.finished} finished, ${t.open} open, ${t.aborted} aborted)`],
    ['Readers', t.readers],
    ['Cases read', `${t.cases_read} of ${t.cases}`],
    ['Gaze samples', t.samples.toLocaleString()],
  ]);
  barChart('chart-reader-sessions', s.by_reader.map((r) => r.username), [
    { label: 'finished', data: s.by_reader.map((r) => r.finished) },
    { label: 'other', data: s.by_reader.map((r) => r.sessions - r.finished) },
  ], { stacked: true });
  barChart('chart-case-sessions', s.cases_by_sessions.map((b) => String(b.value)), [
    { label: 'cases', data: s.cases_by_sessions.map((b) => b.items) },
  ]);
  const cal = s.calibration;
  barChart('chart-calibration', binLabels(cal.histogram.edges, 0), [
    { label: 'sessions', data: cal.histogram.counts },
  ]);
  document.getElementById('calibration-summary').textContent = cal.sessions_with
    ? `${cal.sessions_with} sessions with a validation error: median ${fmtNumber(cal.median, 1)} px, `
      + `90th percentile ${fmtNumber(cal.p90, 1)} px; ${cal.sessions_without} without.`
    : `No session recorded a validation error (${cal.sessions_without} sessions).`;
  fillRows(document.querySelector('#gaze-sources tbody'),
    s.sources.map((r) => [r.source, r.sessions, r.calibrated, fmtNumber(r.median_error_px, 1)]));
  fillRows(document.querySelector('#gaze-cases tbody'),
    s.by_case.map((c) => [caseLink(c.case_id, c.title), c.sessions, c.finished, c.readers]));
  return s;
}

export async function loadPairs(datasetId, metric) {
  const query = new URLSearchParams({ dataset_id: datasetId });
  if (metric) query.set('metric', metric);
  const s = await api(`/api/stats/pairs?${query}`);
  const select = document.getElementById('pair-metric');
  const metrics = [...new Set([s.metric, ...s.metrics])];
  select.replaceChildren(...metrics.map((m) => el('option', { value: m }, m)));
  select.value = s.metric;
  const c = s.coverage;
  const totals = [
    ['Pairs', s.pairs.toLocaleString()],
    ['Positives', `${s.positives.toLocaleString()} (threshold ${s.threshold})`],
    ['Coverage', `${fmtPercent(c.fraction_with_positive)} of ${c.cases} cases have a positive`],
    ['Cases in a pair', c.cases_with_pair],
    ['Cases read', c.cases_with_finished_session],
  ];
  const lp = s.label_precision;
  if (lp) {
    // Only where labels exist: how often positives join same-label cases, against chance.
    totals.push(['Pair precision (labels)', lp.same_label === null
      ? `no positive pair joins two labelled cases (chance ${fmtPercent(lp.base_rate)})`
      : `${fmtPercent(lp.same_label)} same-label of ${lp.n_pairs} labelled pairs (chance ${fmtPercent(lp.base_rate)})`]);
    totals.push(['Positives per case', lp.positives_per_case.toFixed(2)]);
  }
  fillStats(document.getElementById('pair-totals'), totals);
  barChart('chart-similarity', binLabels(s.similarity.edges), [
    { label: 'positive', data: s.positive_similarity.counts },
    { label: 'other', data: s.similarity.counts.map((n, i) => n - s.positive_similarity.counts[i]) },
  ], { stacked: true });
  barChart('chart-positives', s.positives_per_case.map((b) => String(b.value)), [
    { label: 'cases', data: s.positives_per_case.map((b) => b.items) },
  ]);
  fillRows(document.querySelector('#pair-top tbody'),
    s.top_cases.map((r) => [caseLink(r.case_id, r.title), r.positives]));
  return s;
}
