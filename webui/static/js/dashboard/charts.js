// Chart.js wrappers: one chart per canvas, replaced in place when its data changes.
// Chart.js itself is loaded by a classic <script> from /vendor/chart.js/ (window.Chart).

const charts = new Map();

function chartLib() {
  if (!window.Chart) throw new Error('Chart.js did not load from /vendor/chart.js/');
  return window.Chart;
}

function draw(canvasId, config) {
  const canvas = document.getElementById(canvasId);
  const existing = charts.get(canvasId);
  if (existing && existing.config.type === config.type) {
    existing.data = config.data;
    existing.options = config.options;
    existing.update('none');
    return existing;
  }
  if (existing) existing.destroy();
  const Chart = chartLib();
  const chart = new Chart(canvas, config);
  charts.set(canvasId, chart);
  return chart;
}

/** Bar chart; `series` is [{label, data}] aligned with `labels`. */
export function barChart(canvasId, labels, series, { stacked = false } = {}) {
  return draw(canvasId, {
    type: 'bar',
    data: { labels, datasets: series.map((s) => ({ ...s, borderWidth: 0 })) },
    options: {
      animation: false,
      maintainAspectRatio: false,
      plugins: { legend: { display: series.length > 1 } },
      scales: { x: { stacked }, y: { stacked, beginAtZero: true, ticks: { precision: 0 } } },
    },
  });
}

/**
 * Line chart over numeric x; `series` is [{label, data: [{x, y}]}]. Points are drawn when a series
 * is short (a one-point line is otherwise invisible) or when `points` is set (evaluations).
 */
export function lineChart(canvasId, series, { logY = false, xLabel = 'step', points = false } = {}) {
  const radius = (s) => (points || s.data.length <= 30 ? 3 : 0);
  return draw(canvasId, {
    type: 'line',
    data: {
      datasets: series.map((s) => ({
        ...s, pointRadius: radius(s), borderWidth: 1.5, tension: 0, showLine: !points,
      })),
    },
    options: {
      animation: false,
      maintainAspectRatio: false,
      parsing: false,
      scales: {
        x: { type: 'linear', title: { display: true, text: xLabel } },
        y: { type: logY ? 'logarithmic' : 'linear' },
      },
    },
  });
}

/** The chart drawn on a canvas (for tests and live updates). */
export function chartOn(canvasId) {
  return charts.get(canvasId) || null;
}
