"""Stored EGD-CXR raw-gaze samples equal, bit for bit, the data set's geometry applied row by row.

The importer parses columns block by block and builds the samples of many sessions in one array
pass; this file recomputes every stored value with plain Python floats, one row at a time, from
the documented mapping (``server/interchange/egd_cxr.py``) and compares exactly. Small blocks and
batches make a short file cross many block and batch boundaries, and a few cells written with a
different number of decimals (or empty) send some blocks through the general number parsers.
"""

from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from server.interchange import csv_stream, egd_cxr
from server.models import ReadingSession
from server.reading.samples import COLUMN, FLAG_EYE, FLAG_ON_IMAGE, FLAG_VALID, FLAG_VISIBLE, N_COLUMNS
from server.reading.service import session_samples
from tests.server.interchange.conftest import CASES, World
from tests.server.interchange.files import EGD_COLUMNS, egd_row, master_sheet, write_csv
from tests.server.interchange.test_egd_cxr import run

# (top, bottom, left, right) screen margins per image.
MARGINS = {"dcm-a": (240, 240, 360, 360), "dcm-b": (0, 0, 720, 720), "dcm-c": (13, 27, 301, 455)}
# (SESSION_ID, DICOM_ID, rows); "calib" is a calibration screen (not in the sheet).
PLAN = [
    ("S1", "dcm-a", 230),
    ("S1", "calib", 40),
    ("S1", "dcm-b", 170),
    ("S2", "dcm-a", 120),
    ("S2", "dcm-c", 90),
]


def cell(value: float, rng: random.Random) -> str:
    """Mostly 5 decimals like the tracker; now and then fewer, or nothing at all."""
    roll = rng.random()
    if roll < 0.01:
        return ""
    return f"{value:.3f}" if roll < 0.03 else f"{value:.5f}"


def expected_row(dicom: str, t_text: str, fx_text: str, fy_text: str, valid_flag: int) -> list[float]:
    """One sample from the documented EGD-CXR mapping, in plain Python floats."""
    width, height = CASES[dicom]
    top, bottom, left, right = MARGINS[dicom]
    fx = float(fx_text) if fx_text else math.nan
    fy = float(fy_text) if fy_text else math.nan
    valid = valid_flag == 1 and math.isfinite(fx) and math.isfinite(fy)
    zoom_x = (1920 - left - right) / width
    zoom_y = (1080 - top - bottom) / height
    x = (fx * 1920 - left) / zoom_x if valid else -1.0
    y = (fy * 1080 - top) / zoom_y if valid else -1.0
    on_image = valid and 0 <= x < width and 0 <= y < height
    row = [0.0] * N_COLUMNS
    values = {
        "t_ms": float(t_text) * 1000.0,
        "screen_x": left + x * zoom_x if valid else -1.0,
        "screen_y": top + y * zoom_y if valid else -1.0,
        "image_x": x,
        "image_y": y,
        "flags": FLAG_VISIBLE + FLAG_EYE + (FLAG_VALID if valid else 0) + (FLAG_ON_IMAGE if on_image else 0),
        "zoom": zoom_x,
        "pan_x": left,
        "pan_y": top,
        "wl_center": 2048.0,
        "wl_width": 4096.0,
        "img_left": left,
        "img_top": top,
        "img_width": width * zoom_x,
        "img_height": height * zoom_y,
        "screen_w": 1920.0,
        "screen_h": 1080.0,
        "dpr": 1.0,
    }
    for name, value in values.items():
        row[COLUMN[name]] = float(value)
    return row


def test_stored_samples_equal_the_row_by_row_mapping(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(csv_stream, "CHUNK_BYTES", 8 * 1024)
    monkeypatch.setattr(egd_cxr, "BATCH_ROWS", 150)
    master_sheet(tmp_path / "master_sheet.csv", {d: {"margins": m} for d, m in MARGINS.items()})
    rng = random.Random(7)
    rows, expected = [], {}
    for session, dicom, n in PLAN:
        t0 = rng.uniform(0, 50)
        for i in range(n):
            t = f"{t0 + i / 60:.5f}"
            fx, fy = cell(rng.uniform(-0.1, 1.1), rng), cell(rng.uniform(-0.1, 1.1), rng)
            valid = int(rng.random() > 0.1)
            rows.append(egd_row(session, dicom, 0.0, fx, fy, valid=valid))
            rows[-1][4] = t  # Time (in secs) exactly as written
            if dicom in MARGINS:
                expected.setdefault((session, dicom), []).append(expected_row(dicom, t, fx, fy, valid))
    report = run(world, write_csv(tmp_path / "eye_gaze.csv", EGD_COLUMNS, rows), raw_gaze=True)

    assert report.samples == sum(n for _, d, n in PLAN if d in MARGINS)
    assert set(report.ignored) == {"calib"}
    with world.db.session() as session:
        readings = list(session.scalars(select(ReadingSession).order_by(ReadingSession.id)))
        assert [(r.source_info["import"]["session"], r.case_id) for r in readings] == [
            (s, world.case_ids[d]) for s, d, _ in PLAN if d in MARGINS
        ]
        for reading in readings:
            dicom = next(d for d, i in world.case_ids.items() if i == reading.case_id)
            stored = session_samples(session, reading.id)
            want = np.array(expected[(reading.source_info["import"]["session"], dicom)])
            assert stored.shape == want.shape
            # Exact: the same IEEE operations in the same order, whatever the batching.
            mismatch = np.argwhere(stored != want)
            assert mismatch.size == 0, (dicom, mismatch[:5])
