"""A large EGD-CXR ``eye_gaze.csv`` imports with memory that does not grow with the file.

Peak traced memory (tracemalloc: Python objects and numpy buffers) is measured for the same
simulated file layout at two sizes. Reading keeps only the needed columns (~50 bytes per row) and
sessions are written in bounded batches, so four times the rows must cost far less than four
times the memory; the absolute bound extrapolates to well under 500 MB for the real 1.5 M rows.
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from bench.import_gaze import make_database, write_egd
from server.db import Database
from server.interchange import csv_stream, egd_cxr, importer
from server.interchange.service import ImportFormat, ImportOptions, import_gaze

pytestmark = pytest.mark.slow
MB = 1024 * 1024


def peak_import_mb(folder: Path, rows: int) -> float:
    ids = write_egd(folder, rows)
    url = f"sqlite:///{folder / 'import.db'}"
    make_database(url, ids)
    db = Database(url)
    tracemalloc.start()
    try:
        with db.session() as session:
            report = import_gaze(
                session, ImportFormat.egd_cxr, folder, dataset="egd", reader=None,
                options=ImportOptions(raw_gaze=True),
            )  # fmt: skip
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        db.dispose()
    assert report.samples == rows and len(report.created) == len(ids)
    return peak / MB


def test_peak_memory_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Small blocks and batches, so both sizes run in the steady state a full-size file reaches
    # after its first few megabytes.
    monkeypatch.setattr(csv_stream, "CHUNK_BYTES", 1024 * 1024)
    monkeypatch.setattr(importer, "BATCH_SAMPLES", 5_000)
    monkeypatch.setattr(egd_cxr, "BATCH_ROWS", 5_000)
    small = peak_import_mb(tmp_path / "small", 25_000)
    large = peak_import_mb(tmp_path / "large", 100_000)
    # Per-row cost of the kept columns: the growth from 25,000 to 100,000 rows, per extra row.
    per_row = (large - small) * MB / 75_000
    assert large < 120, (small, large)
    assert large < 2.5 * small, (small, large)
    # 1.5 M rows at this per-row cost stays far below 500 MB.
    assert large + per_row * 1_400_000 / MB < 500, (small, large, per_row)
