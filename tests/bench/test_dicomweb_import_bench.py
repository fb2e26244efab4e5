"""Smoke run of ``mcgip bench dicomweb-import`` (private Orthanc, a few instances)."""

from __future__ import annotations

import math

import pytest

from bench import dicomweb_import
from tests.support.orthanc import dicomweb_plugin, orthanc_binary

pytestmark = pytest.mark.slow


@pytest.mark.skipif(orthanc_binary() is None or dicomweb_plugin() is None, reason="Orthanc is not installed")
def test_dicomweb_import_bench_reports_both_rates(capsys: pytest.CaptureFixture[str]) -> None:
    assert dicomweb_import.main(["--instances", "8"]) == 0
    out = capsys.readouterr().out
    assert "reference dicomweb-client retrieve_instance:" in out and "pacs-import job:" in out
    ratio = float(out.split("ratio import/reference: ")[1].split("x")[0])
    assert math.isfinite(ratio) and ratio > 0
