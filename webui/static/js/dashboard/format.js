// Pure helpers of the dashboard (no DOM): error mapping, curve series, metric comparison, formatting.

/**
 * Group a FastAPI-style 422 detail by form field.
 * @param {Array<{loc: Array<string|number>, msg: string}>|string} detail
 * @param {string[]} fields names of the form's fields
 * @returns {{fields: Object<string, string[]>, other: string[]}} messages per field; the rest in `other`.
 *   A location inside a field (e.g. ["body", "advanced", "train", "batch_size"]) is reported on that
 *   field, prefixed with the inner path.
 */
export function fieldErrors(detail, fields) {
  const out = { fields: {}, other: [] };
  if (!Array.isArray(detail)) {
    out.other.push(typeof detail === 'string' ? detail : JSON.stringify(detail));
    return out;
  }
  for (const err of detail) {
    const loc = (err.loc || []).filter((part) => part !== 'body');
    const field = loc.length ? String(loc[0]) : '';
    if (fields.includes(field)) {
      const inner = loc.slice(1).join('.');
      (out.fields[field] ||= []).push(inner ? `${inner}: ${err.msg}` : err.msg);
    } else {
      out.other.push(loc.length ? `${loc.join('.')}: ${err.msg}` : err.msg);
    }
  }
  return out;
}

/**
 * Loss and learning-rate series from a job's progress_info.history.
 * @param {Object<string, Array<[number, number, number]>>} history run -> [[step, loss, lr], ...]
 * @returns {Array<{run: string, points: {loss: Array<{x:number,y:number}>, lr: Array<{x:number,y:number}>}}>}
 */
export function historySeries(history) {
  return Object.entries(history || {})
    .sort(([a], [b]) => (a === 'mcgip' ? -1 : b === 'mcgip' ? 1 : a.localeCompare(b)))
    .map(([run, rows]) => ({
      run,
      points: {
        loss: rows.map(([step, loss]) => ({ x: step, y: loss })),
        lr: rows.map(([step, , lr]) => ({ x: step, y: lr })),
      },
    }));
}

/**
 * Evaluation points of a job's runs as chart series, one per run and metric.
 * @param {Array<{metric: string, run: string, step: number, value: number}>} evaluations
 * @returns {Array<{label: string, data: Array<{x: number, y: number}>}>}
 */
export function evaluationSeries(evaluations) {
  const series = new Map();
  for (const p of evaluations || []) {
    if (typeof p.value !== 'number' || !Number.isFinite(p.value)) continue;
    const label = `${p.metric} (${p.run})`;
    if (!series.has(label)) series.set(label, []);
    series.get(label).push({ x: p.step, y: p.value });
  }
  return [...series.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([label, data]) => ({ label, data }));
}

/** "about 1 min 5 s left" from seconds (null for a missing or non-finite estimate). */
export function fmtEta(seconds) {
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds < 0) return null;
  const s = Math.ceil(seconds);
  if (s < 60) return `about ${s} s left`;
  const m = Math.floor(s / 60);
  if (m < 60) return `about ${m} min ${s % 60} s left`;
  return `about ${Math.floor(m / 60)} h ${m % 60} min left`;
}

function finite(value) {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

/**
 * Rows comparing a model version's metrics with its no-gaze baseline and the previous version.
 * @param {object} metrics the version's metrics ({side_by_side: {"knn.accuracy": {mcgip, baseline, previous?}}})
 * @param {object|null} previous metrics of the previous version, used when the run did not evaluate it
 * @returns {Array<{name: string, value: number|null, baseline: number|null, previous: number|null}>}
 */
export function metricRows(metrics, previous) {
  const table = (metrics && metrics.side_by_side) || {};
  const prevTable = (previous && previous.side_by_side) || {};
  return Object.keys(table).sort().map((name) => {
    const row = table[name] || {};
    const prevRow = prevTable[name] || {};
    return {
      name,
      value: finite(row.mcgip ?? row.baseline),
      baseline: 'mcgip' in row ? finite(row.baseline) : null,
      previous: finite(row.previous ?? prevRow.mcgip ?? prevRow.baseline),
    };
  });
}

export function fmtNumber(value, digits = 3) {
  return value === null || value === undefined || !Number.isFinite(value) ? '–' : value.toFixed(digits);
}

export function fmtPercent(fraction) {
  return `${Math.round(Math.max(0, Math.min(1, fraction || 0)) * 100)}%`;
}

export function fmtTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : d.toLocaleString();
}

/** Bin labels "a–b" of a histogram with edges. */
export function binLabels(edges, digits = 2) {
  const out = [];
  for (let i = 0; i + 1 < edges.length; i += 1) out.push(`${edges[i].toFixed(digits)}–${edges[i + 1].toFixed(digits)}`);
  return out;
}
