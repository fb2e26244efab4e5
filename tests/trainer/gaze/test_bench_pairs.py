"""Smoke run of the pair-mining benchmark (figures are not asserted: they are machine dependent)."""

from __future__ import annotations

import re

import pytest

from bench.pairs import main


def test_bench_pairs_quick_runs_and_reports_every_figure(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--quick"]) == 0
    out = capsys.readouterr().out
    for key in ("multimatch", "moments:", "add one session", "prefilter", "all-pairs"):
        assert key in out, key
    # Values agree with the references even in the smoke run.
    diffs = [float(d) for d in re.findall(r"max \|ours - reference\| = ([0-9.e+-]+)", out)]
    assert diffs and max(diffs) <= 1e-6
    rel = float(re.search(r"max rel\. diff ([0-9.e+-]+)", out).group(1))  # type: ignore[union-attr]
    assert rel < 1e-9
