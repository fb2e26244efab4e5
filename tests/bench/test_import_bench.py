"""Smoke run of ``mcgip bench import`` on a small simulated EGD-CXR file."""

from __future__ import annotations

import math

import pytest

from bench import import_gaze

pytestmark = pytest.mark.slow


def test_small_import_bench_reports_both_rates(capsys: pytest.CaptureFixture[str]) -> None:
    assert import_gaze.main(["--rows", "20000"]) == 0
    out = capsys.readouterr().out
    assert "reference pandas.read_csv:" in out and "ratio import/pandas:" in out
    ratio = float(out.split("ratio import/pandas: ")[1].split("x")[0])
    assert math.isfinite(ratio) and ratio > 0
