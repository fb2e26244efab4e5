"""EGD-CXR (Eye Gaze Data for Chest X-rays, PhysioNet): ``eye_gaze.csv`` and ``fixations.csv``.

Gaze was recorded with a Gazepoint GP3 on a 1920x1080 screen; ``FPOGX``/``FPOGY`` are fractions of
the screen. The image was drawn inside margins given per image in ``master_sheet.csv``
(``image_top``, ``image_bottom``, ``image_left``, ``image_right``, in screen pixels), scaled to fill
the rest of the screen. The data set maps a screen point to original image pixels as

    eye = (FPOGX * 1920, FPOGY * 1080)
    image_x = (eye_x - image_left) * width / (1920 - image_left - image_right)
    image_y = (eye_y - image_top) * height / (1080 - image_top - image_bottom)

which is what this importer does (without the data set's truncation to integers, and keeping
points outside the image, flagged off-image). Without a master sheet, the data set's own mapped
columns ``X_ORIGINAL``/``Y_ORIGINAL`` are used (-1 there means off-image).

One reading session per (``SESSION_ID``, ``DICOM_ID``). Times: ``eye_gaze.csv`` rows are samples
at ``TIME(in secs)``; ``fixations.csv`` rows are fixations starting at ``FPOGS`` lasting ``FPOGD``
seconds, stored as samples covering each fixation (see ``geometry.expand_fixations``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from server.interchange.cases import CaseImage, CaseLookup
from server.interchange.geometry import Viewport, build_samples, expand_fixations
from server.interchange.records import RowError, SessionRecord
from server.interchange.table import Table, numbers, read_table, require_columns

SCREEN_W = 1920
SCREEN_H = 1080
TIME_COLUMNS = ("TIME(in secs)", "TIME")
MARGINS = ("image_top", "image_bottom", "image_left", "image_right")


@dataclass(frozen=True)
class Margins:
    top: float
    bottom: float
    left: float
    right: float


def find_master_sheet(path: Path) -> Path | None:
    """``master_sheet.csv`` beside the gaze file or one folder up."""
    for folder in (path.parent, path.parent.parent):
        candidate = folder / "master_sheet.csv"
        if candidate.is_file():
            return candidate
    return None


def read_master_sheet(path: Path, errors: list[RowError]) -> dict[str, Margins]:
    table = read_table(path, errors)
    if table is None or not require_columns(table, ["dicom_id", *MARGINS], errors):
        return {}
    cols = {name: numbers(table, name, errors, minimum=0) for name in MARGINS}
    ids = table.text("dicom_id")
    return {
        ids[i]: Margins(*(float(cols[m][i]) for m in MARGINS))
        for i in range(len(ids))
        if all(np.isfinite(cols[m][i]) for m in MARGINS)
    }


def parse(
    path: Path,
    cases: CaseLookup,
    *,
    master_sheet: Path | None = None,
    fixation_hz: float = 60.0,
) -> tuple[list[SessionRecord], list[RowError]]:
    """Sessions in an EGD-CXR gaze table.

    Args:
        path: ``eye_gaze.csv`` or ``fixations.csv`` (a file whose name starts with "fixations" is
            read as fixations), or a folder holding ``fixations.csv``.
        cases: Case lookup by ``DICOM_ID``.
        master_sheet: The data set's ``master_sheet.csv`` (found beside ``path`` when omitted).
        fixation_hz: Rate at which fixations are stored as samples.

    Returns:
        The sessions and every problem found.
    """
    errors: list[RowError] = []
    if path.is_dir():
        path = path / "fixations.csv"
    table = read_table(path, errors)
    if table is None:
        return [], errors
    fixations = path.name.lower().startswith("fixations")
    time_col = "FPOGS" if fixations else table.first_of(*TIME_COLUMNS)
    needed = ["SESSION_ID", "DICOM_ID", "FPOGX", "FPOGY", "FPOGV"]
    if time_col is None:
        errors.append(RowError(path, 1, f"missing a time column ({' or '.join(TIME_COLUMNS)})"))
        return [], errors
    needed.append(time_col)
    if fixations:
        needed.append("FPOGD")
    sheet_path = master_sheet or find_master_sheet(path)
    margins = read_master_sheet(sheet_path, errors) if sheet_path is not None else None
    if margins is None:
        needed += ["X_ORIGINAL", "Y_ORIGINAL"]
    if not require_columns(table, needed, errors):
        return [], errors

    t_s = numbers(table, time_col, errors, minimum=0)
    fx = numbers(table, "FPOGX", errors, allow_empty=True)
    fy = numbers(table, "FPOGY", errors, allow_empty=True)
    fv = numbers(table, "FPOGV", errors)
    dur_s = numbers(table, "FPOGD", errors, minimum=0) if fixations else None
    orig = (
        (
            numbers(table, "X_ORIGINAL", errors, allow_empty=True),
            numbers(table, "Y_ORIGINAL", errors, allow_empty=True),
        )
        if margins is None
        else None
    )
    if errors:
        return [], errors

    groups: dict[tuple[str, str], list[int]] = {}
    for i, key in enumerate(zip(table.text("SESSION_ID"), table.text("DICOM_ID"), strict=True)):
        groups.setdefault(key, []).append(i)
    records = []
    for (session_id, dicom_id), rows in groups.items():
        idx = np.asarray(rows, dtype=np.int64)
        first_line = table.lines[rows[0]]
        case = cases(dicom_id)
        if case is None:
            errors.append(
                RowError(path, first_line, f"no case with external id DICOM_ID={dicom_id!r} in the dataset")
            )
            continue
        margin = None
        if margins is not None:
            margin = margins.get(dicom_id)
            if margin is None:
                errors.append(RowError(path, first_line, f"DICOM_ID {dicom_id!r} is not in {sheet_path}"))
                continue
        record = _session(
            table, idx, case, margin, orig, (t_s, fx, fy, fv, dur_s), fixation_hz, session_id, dicom_id
        )
        records.append(record)
    return records, errors


def _session(
    table: Table,
    idx: np.ndarray,
    case: CaseImage,
    margin: Margins | None,
    orig: tuple[np.ndarray, np.ndarray] | None,
    columns: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None],
    fixation_hz: float,
    session_id: str,
    dicom_id: str,
) -> SessionRecord:
    t_s, fx, fy, fv, dur_s = columns
    lines = np.asarray(table.lines, dtype=np.int64)[idx]
    valid = (fv[idx] == 1) & np.isfinite(fx[idx]) & np.isfinite(fy[idx])
    if margin is not None:
        shown_w = SCREEN_W - margin.left - margin.right
        shown_h = SCREEN_H - margin.top - margin.bottom
        zoom_x, zoom_y = shown_w / case.width, shown_h / case.height
        ex, ey = fx[idx] * SCREEN_W, fy[idx] * SCREEN_H
        xy = np.stack([(ex - margin.left) / zoom_x, (ey - margin.top) / zoom_y], axis=1)
        view = Viewport(
            zoom_x, margin.left, margin.top, SCREEN_W, SCREEN_H, case.window_center, case.window_width
        )
        mapping = {"mapping": "master_sheet", "margins": margin.__dict__, "zoom_y": zoom_y}
    else:
        assert orig is not None
        xy = np.stack([orig[0][idx], orig[1][idx]], axis=1)
        # The data set marks off-image points with -1: their position is unknown, so not a valid point.
        valid &= np.isfinite(xy).all(axis=1) & (xy[:, 0] >= 0) & (xy[:, 1] >= 0)
        view = Viewport(
            1.0, 0.0, 0.0, float(case.width), float(case.height), case.window_center, case.window_width
        )
        mapping = {"mapping": "X_ORIGINAL/Y_ORIGINAL"}
    t0 = float(t_s[idx].min())
    if dur_s is None:
        t_ms = (t_s[idx] - t0) * 1000.0
        owner = np.arange(idx.shape[0])
        kind = "samples"
    else:
        t_ms, owner = expand_fixations((t_s[idx] - t0) * 1000.0, dur_s[idx] * 1000.0, fixation_hz)
        kind = "fixations"
    # Samples keep the input order; a time going backwards is reported by check_samples.
    samples = build_samples(t_ms, xy[owner], valid[owner], (case.width, case.height), view)
    return SessionRecord(
        case_ref=dicom_id,
        reader=None,
        source="import",
        source_info={
            "import": {
                "format": "egd-cxr",
                "file": table.path.name,
                "kind": kind,
                "session": session_id,
                **mapping,
            }
            | ({"fixation_hz": fixation_hz} if kind == "fixations" else {}),
            "device": "Gazepoint GP3",
        },
        display_info={"screen_w": SCREEN_W, "screen_h": SCREEN_H, "dpr": 1},
        samples=samples,
        lines=lines[owner],
        path=table.path,
        key=f"egd-cxr:{table.path.name}:{session_id}:{dicom_id}",
    )
