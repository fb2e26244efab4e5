"""REFLACX (reports and eye tracking for chest x-rays, PhysioNet): ``main_data/<id>/fixations.csv``.

Each reading ``<id>`` is listed in ``main_data/metadata_phase_<n>.csv`` with its ``dicom_id`` (the
case's external id) and the original image size (``image_size_x``, ``image_size_y``). Fixation
rows hold ``timestamp_start_fixation``/``timestamp_end_fixation`` (seconds), the position in image
pixels (``x_position``, ``y_position``) and the display state at the fixation's start:
``xmin/ymin/xmax/ymax_shown_from_image`` (the part of the image on screen, image px) and
``xmin/ymin/xmax/ymax_in_screen_coordinates`` (where it was drawn, screen px on a 3840x2160
display), plus ``window_level``/``window_width`` on the data set's [0, 1] intensity scale.

Per fixation the importer derives the viewer columns: zoom = shown screen width / shown image
width, the full image rectangle on the screen, screen position = rectangle origin + position x
zoom, and the window in modality units (level and width x ``intensity_scale``, 4096 for the
12-bit MIMIC-CXR images the data set normalised). Positions are rescaled when the stored image
has another size than the original. Fixations are stored as samples covering each fixation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from server.interchange.cases import CaseImage, CaseLookup
from server.interchange.geometry import Viewport, build_samples, expand_fixations
from server.interchange.records import RowError, SessionRecord
from server.interchange.table import numbers, read_table, require_columns

SCREEN_W = 3840
SCREEN_H = 2160
SHOWN = ("xmin_shown_from_image", "ymin_shown_from_image", "xmax_shown_from_image", "ymax_shown_from_image")
ON_SCREEN = (
    "xmin_in_screen_coordinates",
    "ymin_in_screen_coordinates",
    "xmax_in_screen_coordinates",
    "ymax_in_screen_coordinates",
)


def _metadata(folder: Path, errors: list[RowError]) -> dict[str, tuple[str, int | None, int | None, int]]:
    """reading id -> (dicom_id, original width, original height, metadata line) from every phase table."""
    found: dict[str, tuple[str, int | None, int | None, int]] = {}
    for path in sorted(folder.glob("metadata_phase_*.csv")):
        table = read_table(path, errors)
        if table is None or not require_columns(table, ["id", "dicom_id"], errors):
            continue
        sizes = (
            (
                numbers(table, "image_size_x", errors, minimum=1),
                numbers(table, "image_size_y", errors, minimum=1),
            )
            if table.has("image_size_x", "image_size_y")
            else None
        )
        discarded = (
            table.text("eye_tracking_data_discarded") if table.has("eye_tracking_data_discarded") else None
        )
        for i, (rid, dicom) in enumerate(zip(table.text("id"), table.text("dicom_id"), strict=True)):
            if discarded is not None and discarded[i].lower() == "true":
                continue
            w = int(sizes[0][i]) if sizes is not None and np.isfinite(sizes[0][i]) else None
            h = int(sizes[1][i]) if sizes is not None and np.isfinite(sizes[1][i]) else None
            found[rid] = (dicom, w, h, table.lines[i])
    return found


def parse(
    path: Path,
    cases: CaseLookup,
    *,
    fixation_hz: float = 60.0,
    intensity_scale: float = 4096.0,
) -> tuple[list[SessionRecord], list[RowError]]:
    """Sessions of a REFLACX ``main_data`` folder (or one reading's folder inside it).

    Args:
        path: ``main_data`` (with ``metadata_phase_*.csv``), or ``main_data/<id>``.
        cases: Case lookup by ``dicom_id``.
        fixation_hz: Rate at which fixations are stored as samples.
        intensity_scale: Modality units per unit of the data set's window level/width.
    """
    errors: list[RowError] = []
    if (path / "fixations.csv").is_file() and not list(path.glob("metadata_phase_*.csv")):
        folder, ids = path.parent, [path.name]
    else:
        folder, ids = path, None
    meta = _metadata(folder, errors)
    if not meta and not errors:
        errors.append(RowError(folder, None, "no metadata_phase_*.csv with readings (id, dicom_id) found"))
    if ids is None:
        ids = sorted(rid for rid in meta if (folder / rid / "fixations.csv").is_file())
        if meta and not ids:
            errors.append(RowError(folder, None, "none of the listed readings has a <id>/fixations.csv"))
    records = []
    for rid in ids:
        if rid not in meta:
            errors.append(RowError(folder / rid, None, f"reading {rid!r} is not in any metadata_phase_*.csv"))
            continue
        dicom, w0, h0, meta_line = meta[rid]
        case = cases(dicom)
        if case is None:
            errors.append(
                RowError(folder, meta_line, f"no case with external id dicom_id={dicom!r} in the dataset")
            )
            continue
        record = _reading(
            folder / rid / "fixations.csv", rid, dicom, case, (w0, h0), fixation_hz, intensity_scale, errors
        )
        if record is not None:
            records.append(record)
    return records, errors


def _reading(
    path: Path,
    rid: str,
    dicom: str,
    case: CaseImage,
    original: tuple[int | None, int | None],
    fixation_hz: float,
    intensity_scale: float,
    errors: list[RowError],
) -> SessionRecord | None:
    before = len(errors)
    table = read_table(path, errors)
    if table is None:
        return None
    x_col = table.first_of("x_position", "average_x_position")
    y_col = table.first_of("y_position", "average_y_position")
    if x_col is None or y_col is None:
        errors.append(RowError(path, 1, "missing column(s) x_position, y_position"))
        return None
    if not require_columns(table, ["timestamp_start_fixation", "timestamp_end_fixation"], errors):
        return None
    start = numbers(table, "timestamp_start_fixation", errors, minimum=0)
    end = numbers(table, "timestamp_end_fixation", errors, minimum=0)
    x = numbers(table, x_col, errors, allow_empty=True)
    y = numbers(table, y_col, errors, allow_empty=True)
    for i in np.flatnonzero(np.isfinite(start) & np.isfinite(end) & (end < start)):
        errors.append(
            RowError(path, table.lines[i], "timestamp_end_fixation is before timestamp_start_fixation")
        )
    display = table.has(*SHOWN, *ON_SCREEN)
    shown = [numbers(table, c, errors) for c in SHOWN] if display else None
    screen = [numbers(table, c, errors) for c in ON_SCREEN] if display else None
    windowed = table.has("window_level", "window_width")
    level = numbers(table, "window_level", errors) if windowed else None
    width = numbers(table, "window_width", errors, minimum=0) if windowed else None
    if len(errors) > before:
        return None
    if not table.rows:
        errors.append(RowError(path, None, "no fixations"))
        return None

    # Original image pixels -> stored image pixels (the stored copy may be resized).
    sx = case.width / original[0] if original[0] else 1.0
    sy = case.height / original[1] if original[1] else 1.0
    t0 = float(start.min())
    t_ms, owner = expand_fixations((start - t0) * 1000.0, (end - start) * 1000.0, fixation_hz)
    valid = np.isfinite(x) & np.isfinite(y)
    xy = np.stack([x * sx, y * sy], axis=1)
    placement: tuple[Any, ...]
    if shown is not None and screen is not None:
        zoom = (screen[2] - screen[0]) / np.maximum((shown[2] - shown[0]) * sx, 1e-9)
        left = screen[0] - shown[0] * sx * zoom
        top = screen[1] - shown[1] * sy * zoom
        inside = (x >= shown[0]) & (x <= shown[2]) & (y >= shown[1]) & (y <= shown[3])
        placement = (zoom[owner], left[owner], top[owner], float(SCREEN_W), float(SCREEN_H))
    else:
        inside = np.ones(len(table.rows), dtype=bool)
        placement = (1.0, 0.0, 0.0, float(case.width), float(case.height))
    wl_c = level * intensity_scale if level is not None else np.full(len(table.rows), case.window_center)
    wl_w = width * intensity_scale if width is not None else np.full(len(table.rows), case.window_width)
    zoom_o, left_o, top_o, screen_w, screen_h = placement
    view = Viewport(zoom_o, left_o, top_o, screen_w, screen_h, wl_c[owner], wl_w[owner])
    samples = build_samples(
        t_ms, xy[owner], valid[owner], (case.width, case.height), view, shown=inside[owner]
    )
    return SessionRecord(
        case_ref=dicom,
        reader=None,
        source="import",
        source_info={
            "import": {
                "format": "reflacx",
                "reading": rid,
                "kind": "fixations",
                "fixation_hz": fixation_hz,
                "intensity_scale": intensity_scale,
                "image_scale": [sx, sy],
            },
            "device": "EyeLink 1000",
        },
        display_info={
            "screen_w": SCREEN_W if display else case.width,
            "screen_h": SCREEN_H if display else case.height,
            "dpr": 1,
        },
        samples=samples,
        lines=np.asarray(table.lines, dtype=np.int64)[owner],
        path=path,
        key=f"reflacx:{rid}",
    )
