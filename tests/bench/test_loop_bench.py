"""Smoke run of ``mcgip bench loop --quick``: the embedded set-up closes the loop and reports it.

It starts a real ``mcgip serve --with-worker`` on a temporary data directory, reads two new cases
over ``/ws/gaze`` and trains a tiny retrain to the end, so it takes about a minute.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from bench import loop

pytestmark = pytest.mark.slow


def test_quick_loop_reports_finite_figures_within_bounds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "loop.json"
    assert loop.main(["--quick", "--json", str(out)]) == 0
    report = capsys.readouterr().out
    figures = json.loads(out.read_text())

    assert len(figures["latency_s"]) == 2
    for key in (
        "latency_p50_s",
        "latency_max_s",
        "queue_round_trip_s",
        "latency_p50_over_round_trip",
        "retrain_total_s",
        "progress_max_gap_s",
        "progress_max_gap_over_target",
    ):
        assert math.isfinite(figures[key]) and figures[key] > 0, key
    # Generous bound for a loaded CI box; the benchmark itself reports the real figure.
    assert figures["latency_max_s"] < 30
    assert figures["retrain_state"] == "succeeded"
    assert figures["progress_reports"] >= 2
    assert figures["pairs_per_new_case_min"] > 0
    # The printed report carries the same figures.
    assert f"max {figures['latency_max_s']:.2f} s" in report
    assert f"max {figures['progress_max_gap_s']:.2f} s (target <= 2 s)" in report
