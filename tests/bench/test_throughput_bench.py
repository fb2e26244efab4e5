"""Smoke run of ``mcgip bench throughput`` at a tiny size on CPU: both models step and it reports."""

from __future__ import annotations

import re

import pytest

from bench import throughput
from server.cli.bench import BENCHMARKS

# A ResNet-50 and two ResNet-18s on CPU: about a minute on a loaded 2-core machine.
pytestmark = pytest.mark.slow


def test_throughput_bench_runs_tiny_on_cpu(capsys: pytest.CaptureFixture[str]) -> None:
    assert BENCHMARKS["throughput"] == "bench.throughput"
    argv = [
        "--device",
        "cpu",
        "--backbone",
        "resnet18",
        "--image-size",
        "32",
        "--batch",
        "2",
        "--trials",
        "2",
        "--warmup",
        "1",
    ]
    assert throughput.main([*argv, "--queue", "64", "--cases", "16", "--positives", "2"]) == 0
    out = capsys.readouterr().out
    assert "reference = plain torchvision ResNet-50" in out
    match = re.search(
        r"same batch: (PASS|FAIL) \((\d+\.\d+)x; against a plain step on both views: (\d+\.\d+)x", out
    )
    assert match, out
    assert float(match.group(2)) > 0 and float(match.group(3)) > 0
