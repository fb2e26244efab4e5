// AI second read panel: reader-model agreement (Cohen's kappa) and reader alone vs reader + AI accuracy.

import { api, el } from '../api.js';

function withCi(x) {
  if (!x || x.value === null || x.value === undefined) return 'n/a';
  const f = (v) => (typeof v === 'number' ? v.toFixed(3) : 'n/a');
  return `${f(x.value)} [${f(x.ci_low)}, ${f(x.ci_high)}]`;
}

export async function loadSecondRead(datasetId) {
  const box = document.getElementById('second-read-stats');
  if (!box) return;
  const s = await api(`/api/stats/second-read?dataset_id=${datasetId}`);
  const rows = [
    ['Shown', String(s.n_shown)],
    ['Agree / disagree / amend', `${s.choices.agree} / ${s.choices.disagree} / ${s.choices.amend}`],
    ["Reader-model Cohen's kappa (95% CI)", s.kappa ? `${withCi(s.kappa)}, n=${s.kappa.n}` : 'n/a'],
  ];
  if (s.accuracy) {
    rows.push(
      ['Reader alone accuracy', `${withCi(s.accuracy.reader_alone)}, n=${s.accuracy.n}`],
      ['Reader + AI accuracy', withCi(s.accuracy.reader_with_ai)],
      ['Difference (reader + AI − alone)', `${withCi(s.accuracy.difference)} → ${s.accuracy.verdict}`],
    );
  }
  box.replaceChildren(...rows.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
}
