"""Smoke run of ``mcgip bench predict --quick``: reference, API and ingest-while-predicting phases."""

from __future__ import annotations

import os
import re

import pytest

from bench import predict

pytestmark = pytest.mark.slow


def test_quick_predict_bench_reports_every_ratio(capsys: pytest.CaptureFixture[str]) -> None:
    before = {k: v for k, v in os.environ.items() if k.startswith("MCGIP_")}
    assert predict.main(["--quick", "--duration", "1", "--readers", "4", "--clients", "2"]) == 0
    # The server's knobs reach only its process: later tests in this process see the same environment.
    assert {k: v for k, v in os.environ.items() if k.startswith("MCGIP_")} == before
    out = capsys.readouterr().out
    for line in ("throughput API/reference", "p95 API/reference", "gaze p99 ack while predicting"):
        assert re.search(rf"{line} [0-9.]+", out), out
    assert re.search(r"API predict\s+[0-9.]+ req/s .* errors 0", out), out
