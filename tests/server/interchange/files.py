"""Writers of small EGD-CXR-, REFLACX- and CSV-shaped files for the import tests."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

EGD_COLUMNS = [
    "SESSION_ID", "MEDIA_ID", "DICOM_ID", "CNT", "TIME(in secs)", "TIMETICK(f=10000000)",
    "FPOGX", "FPOGY", "FPOGS", "FPOGD", "FPOGID", "FPOGV", "BPOGX", "BPOGY", "BPOGV",
]  # fmt: skip
REFLACX_COLUMNS = [
    "timestamp_start_fixation", "timestamp_end_fixation", "x_position", "y_position",
    "pupil_area_normalized",
    "angular_resolution_x_pixels_per_degree", "angular_resolution_y_pixels_per_degree",
    "window_width", "window_level",
    "xmin_shown_from_image", "ymin_shown_from_image", "xmax_shown_from_image", "ymax_shown_from_image",
    "xmin_in_screen_coordinates", "ymin_in_screen_coordinates", "xmax_in_screen_coordinates",
    "ymax_in_screen_coordinates",
]  # fmt: skip


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def egd_row(session: str, dicom: str, t: float, fx: float | str, fy: float | str, valid: int = 1,
            start: float | None = None, duration: float = 0.0) -> list[Any]:  # fmt: skip
    """One EGD-CXR row (eye_gaze.csv and fixations.csv share the layout)."""
    s = t if start is None else start
    return [session, 1, dicom, 1, t, int(t * 1e7), fx, fy, s, duration, 1, valid, fx, fy, valid]


def master_sheet(path: Path, margins: dict[str, tuple[int, int, int, int]]) -> Path:
    """``master_sheet.csv`` with (top, bottom, left, right) margins per dicom id."""
    rows = [[dicom, "p", top, bottom, left, right] for dicom, (top, bottom, left, right) in margins.items()]
    header = ["dicom_id", "path", "image_top", "image_bottom", "image_left", "image_right"]
    return write_csv(path, header, rows)


Rect = tuple[int, int, int, int]


def reflacx_row(start: float, end: float, x: float | str, y: float | str, shown: Rect, screen: Rect,
                level: float = 0.5, width: float = 1.0) -> list[Any]:  # fmt: skip
    return [start, end, x, y, 1.0, 90, 90, width, level, *shown, *screen]
