// Evidence panel of a model version: each metric with its 95% CI, the paired difference to the
// no-gaze baseline, the verdict, and a forest plot of the differences (inline SVG, no library).
// The pure helpers (evidenceRows, verdictOf) take the report of GET /api/models/{id}/evaluation,
// which the model list also carries as metrics.evaluation.

import { el } from '../api.js';

/** Metrics shown per version, in order. */
export const EVIDENCE_METRICS = [
  'knn.balanced_accuracy', 'knn.accuracy', 'knn.macro_auc',
  'linear.balanced_accuracy', 'linear.accuracy', 'linear.macro_auc', 'knn.ece',
];

function finite(value) {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

function ci(entry) {
  if (!entry) return null;
  return { value: finite(entry.value), low: finite(entry.ci_low), high: finite(entry.ci_high) };
}

/**
 * Rows of McGIP's metrics with CIs, the baseline's, and the paired difference.
 * @param {object|null} evaluation the evaluation report
 * @param {string} condition the condition compared with the baseline (default "mcgip")
 * @returns {Array<{name: string, value: object, baseline: object|null, diff: object|null}>}
 */
export function evidenceRows(evaluation, condition = 'mcgip') {
  if (!evaluation || evaluation.status !== 'ok') return [];
  const own = (evaluation.conditions || {})[condition] || {};
  const base = (evaluation.conditions || {})[evaluation.baseline] || {};
  const diffs = (evaluation.differences || {})[condition] || {};
  return EVIDENCE_METRICS.filter((name) => name in own).map((name) => {
    const d = diffs[name];
    return {
      name,
      value: ci(own[name]),
      baseline: ci(base[name]),
      diff: d ? { ...ci(d), p: finite(d.p_value) } : null,
    };
  });
}

/**
 * The verdict line: "better" only when the CI of the difference lies above 0, "worse" below,
 * otherwise "cannot tell yet — N more labelled cases would narrow it to ±x"; or what is missing.
 * @returns {{verdict: string, text: string}}
 */
export function verdictOf(evaluation) {
  if (!evaluation) return { verdict: 'not evaluated', text: 'not evaluated (retrain to get a cross-validated evaluation)' };
  if (evaluation.status !== 'ok') {
    return { verdict: 'cannot tell', text: `cannot tell — ${(evaluation.problems || []).join('; ')}` };
  }
  const v = (evaluation.verdicts || {}).mcgip;
  if (!v) return { verdict: 'cannot tell', text: evaluation.verdict_text || 'cannot tell' };
  if (v.verdict === 'cannot tell' && v.more_cases) {
    return {
      verdict: v.verdict,
      text: `cannot tell yet — ${v.more_cases} more labelled cases would narrow it to ±${fmtPoints(v.narrow_to)}`,
    };
  }
  return { verdict: v.verdict, text: v.text || v.verdict };
}

function fmtPoints(x) {
  return finite(x) === null ? '–' : `${(100 * x).toFixed(1)} pt`;
}

function fmtCi(entry) {
  if (!entry || entry.value === null) return '–';
  const range = entry.low === null ? '' : ` [${entry.low.toFixed(3)}, ${entry.high.toFixed(3)}]`;
  return `${entry.value.toFixed(3)}${range}`;
}

function fmtDiff(diff) {
  if (!diff || diff.value === null) return '–';
  const sign = (x) => (x >= 0 ? '+' : '') + x.toFixed(3);
  const range = diff.low === null ? '' : ` [${sign(diff.low)}, ${sign(diff.high)}]`;
  return `${sign(diff.value)}${range}${diff.p === null ? '' : `, p = ${diff.p.toFixed(3)}`}`;
}

const SVG = 'http://www.w3.org/2000/svg';

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Forest plot of the differences to the baseline: one CI bar and point per metric, a line at 0. */
export function forestPlot(rows) {
  const shown = rows.filter((r) => r.diff && r.diff.value !== null && r.diff.low !== null);
  const labelW = 170, plotW = 240, rowH = 18, pad = 16;
  const height = pad * 2 + rowH * shown.length;
  const root = svg('svg', {
    width: labelW + plotW + 10, height, class: 'forest', role: 'img',
    'aria-label': 'difference to the baseline with 95% CI per metric',
  });
  const span = Math.max(0.02, ...shown.map((r) => Math.max(Math.abs(r.diff.low), Math.abs(r.diff.high))));
  const x = (v) => labelW + plotW / 2 + (v / span) * (plotW / 2 - 6);
  root.append(svg('line', { x1: x(0), x2: x(0), y1: pad / 2, y2: height - pad / 2, stroke: '#888', 'stroke-dasharray': '3 2' }));
  root.append(svg('text', { x: x(0), y: height - 2, 'text-anchor': 'middle', 'font-size': 10 }, '0'));
  root.append(svg('text', { x: x(span), y: height - 2, 'text-anchor': 'end', 'font-size': 10 }, `+${span.toFixed(2)}`));
  root.append(svg('text', { x: x(-span), y: height - 2, 'text-anchor': 'start', 'font-size': 10 }, `−${span.toFixed(2)}`));
  shown.forEach((r, i) => {
    const y = pad + rowH * i + rowH / 2;
    const lowerBetter = r.name.endsWith('.ece');
    const good = lowerBetter ? r.diff.high < 0 : r.diff.low > 0;
    const bad = lowerBetter ? r.diff.low > 0 : r.diff.high < 0;
    const colour = good ? '#276749' : bad ? '#b00020' : '#555';
    root.append(svg('text', { x: 0, y: y + 4, 'font-size': 11 }, r.name));
    root.append(svg('line', { x1: x(r.diff.low), x2: x(r.diff.high), y1: y, y2: y, stroke: colour, 'stroke-width': 2, 'data-metric': r.name }));
    root.append(svg('circle', { cx: x(r.diff.value), cy: y, r: 3.5, fill: colour }));
  });
  return root;
}

/** The evidence cell of one model version. */
export function evidenceCell(model) {
  const evaluation = (model.metrics || {}).evaluation || null;
  const { verdict, text } = verdictOf(evaluation);
  const cls = verdict === 'better' ? 'better' : verdict === 'worse' ? 'worse' : 'muted';
  const rows = evidenceRows(evaluation);
  const parts = [el('div', { class: `verdict ${cls}`, 'data-testid': `verdict-${model.id}` }, text)];
  if (evaluation && evaluation.status === 'ok') {
    parts.push(el('div', { class: 'muted' },
      `${evaluation.n_cases} labelled cases, ${evaluation.n_folds}-fold CV, 95% bootstrap CIs`));
    parts.push(el('table', { class: 'metrics' },
      el('tr', {}, el('th', {}, 'metric'), el('th', {}, 'McGIP'), el('th', {}, 'baseline'), el('th', {}, 'difference')),
      ...rows.map((r) => el('tr', {},
        el('th', {}, r.name), el('td', {}, fmtCi(r.value)), el('td', {}, fmtCi(r.baseline)),
        el('td', {}, fmtDiff(r.diff))))));
    const plot = el('div', { class: 'forest-plot', 'data-testid': `forest-${model.id}` });
    plot.append(forestPlot(rows));
    parts.push(plot);
  }
  return el('div', { class: 'evidence' }, ...parts);
}
