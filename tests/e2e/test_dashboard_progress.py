"""The dashboard's live job panel replaying a retrain's recorded progress: bar, time left, curves."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import PASSWORD, E2EServer
from tests.e2e.ui_checks import screenshot, signed_in_page
from tests.server.worker.test_training_progress import replay

pytestmark = pytest.mark.e2e

SHOW = """async (jobs) => {
  const m = await import('/static/js/dashboard/jobs.js');
  const seen = [];
  for (const job of jobs) {
    m.showLive(job);
    seen.push([document.getElementById('job-live-progress').textContent,
               document.getElementById('job-live-detail').textContent]);
  }
  return seen;
}"""
POINTS = """async () => {
  const charts = await import('/static/js/dashboard/charts.js');
  const out = {};
  for (const id of ['chart-loss', 'chart-lr', 'chart-eval']) {
    const chart = charts.chartOn(id);
    out[id] = chart ? Object.fromEntries(chart.data.datasets.map((d) => [d.label, d.data.length])) : {};
  }
  return out;
}"""


@pytest.mark.parametrize(("steps", "every"), [(3, 10), (400, 10)])
def test_live_panel_replays_a_short_and_a_long_retrain(
    e2e_server: E2EServer, browser: Any, steps: int, every: int
) -> None:
    ctx, _ = replay(steps, every, 1.5)
    jobs = [
        {"id": 1, "kind": "retrain", "state": "running", "progress": p, "progress_info": info, "log_tail": ""}
        for p, info in ctx.states
    ]
    jobs.append({**jobs[-1], "state": "succeeded", "progress": 1.0, "result": {"version": 1}})
    page = signed_in_page(browser, e2e_server.base_url, "admin", PASSWORD)
    try:
        page.goto(f"{e2e_server.base_url}/dashboard?dataset={e2e_server.dataset_id}")
        page.wait_for_load_state("networkidle")
        seen = page.evaluate(SHOW, jobs)
        percents = [int(p.rstrip("%")) for p, _ in seen]
        assert percents == sorted(percents) and percents[-1] == 100
        assert not any("NaN" in d or "undefined" in d for _, d in seen)
        left = [d for _, d in seen if "left" in d]
        if steps > every:  # a long run: the estimate is there while training, in minutes
            assert any("min" in d for d in left) and "run mcgip" in left[0]
        assert "left" not in seen[-1][1] and "model version 1" in seen[-1][1]
        points = page.evaluate(POINTS)
        logged = len([s for s in range(1, steps + 1) if s % every == 0 or s == steps])
        assert points["chart-loss"] == {"mcgip": logged, "baseline": logged}
        assert points["chart-lr"] == {"mcgip": logged, "baseline": logged}
        assert points["chart-eval"] == {
            "knn.accuracy (baseline)": 1,
            "knn.accuracy (mcgip)": 1,
            "linear.accuracy (mcgip)": 1,
        }
        assert page.locator("#chart-eval-figure").is_visible()
        # A one-point curve is drawn as a point (a line of one point is invisible).
        radius = page.evaluate(
            "async () => (await import('/static/js/dashboard/charts.js')).chartOn('chart-loss')"
            ".data.datasets[0].pointRadius"
        )
        assert (radius > 0) == (logged <= 30)
        page.locator("#job-live").scroll_into_view_if_needed()
        screenshot(page, f"dashboard-progress-{steps}-steps")
    finally:
        page.context.close()
