"""Plain CSV gaze in image pixels: ``t, x, y`` (+ optional ``duration``, ``valid``).

Columns (header names, case-insensitive; aliases in brackets):

- ``t`` [``t_ms``, ``time_ms``]: time in ms, non-decreasing;
- ``x``, ``y`` [``image_x``, ``image_y``]: image pixel coordinates (x = column, y = row); empty
  cells mean no gaze point (a blink or lost track);
- ``duration`` [``duration_ms``] (optional): the rows are fixations of that length, stored as
  samples covering each fixation;
- ``valid`` (optional, 0/1): 0 marks a sample without a gaze point.

A file whose header holds all 18 sample columns (an exported session, or the samples endpoint's
CSV) is taken verbatim instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from server.interchange.cases import CaseImage
from server.interchange.geometry import Viewport, build_samples, expand_fixations
from server.interchange.records import RowError, SessionRecord
from server.interchange.table import Table, numbers, read_table
from server.reading.samples import COLUMNS

ALIASES = {
    "t": ("t", "t_ms", "time_ms"),
    "x": ("x", "image_x"),
    "y": ("y", "image_y"),
    "duration": ("duration", "duration_ms"),
    "valid": ("valid",),
}


def _lower(table: Table) -> Table:
    return Table(table.path, [h.lower() for h in table.header], table.rows, table.lines)


def read_full_samples(table: Table, errors: list[RowError]) -> np.ndarray:
    """The 18 sample columns of ``table`` (header order may differ), ``(n, 18)``."""
    cols = [numbers(table, name, errors) for name in COLUMNS]
    return np.stack(cols, axis=1) if table.rows else np.empty((0, len(COLUMNS)))


def parse(
    path: Path,
    case_ref: str,
    case: CaseImage | None,
    *,
    fixation_hz: float = 60.0,
    eye_gaze: bool = True,
) -> tuple[list[SessionRecord], list[RowError]]:
    """One session from a plain or full-column CSV file.

    Args:
        path: The CSV file.
        case_ref: External id of the case the gaze belongs to.
        case: That case's image (None: the case does not exist, which is reported).
        fixation_hz: Rate at which fixation rows are stored as samples.
        eye_gaze: Whether the points are eye gaze (flag bit 8) rather than mouse or simulated.
    """
    errors: list[RowError] = []
    table = read_table(path, errors)
    if table is None:
        return [], errors
    if case is None:
        errors.append(RowError(path, None, f"no case with external id {case_ref!r} in the dataset"))
        return [], errors
    if all(name in table.header for name in COLUMNS):
        samples = read_full_samples(table, errors)
        kind = "samples (18 columns)"
        lines = np.asarray(table.lines, dtype=np.int64)
    else:
        low = _lower(table)
        col = {key: low.first_of(*names) for key, names in ALIASES.items()}
        missing = [key for key in ("t", "x", "y") if col[key] is None]
        if missing:
            errors.append(
                RowError(path, 1, f"missing column(s) {', '.join(missing)} (or all 18 sample columns)")
            )
            return [], errors
        assert col["t"] is not None and col["x"] is not None and col["y"] is not None
        t = numbers(low, col["t"], errors, minimum=0)
        x = numbers(low, col["x"], errors, allow_empty=True)
        y = numbers(low, col["y"], errors, allow_empty=True)
        valid = np.isfinite(x) & np.isfinite(y)
        if col["valid"] is not None:
            flag = numbers(low, col["valid"], errors)
            for i in np.flatnonzero(np.isfinite(flag) & (flag != 0) & (flag != 1)):
                errors.append(RowError(path, table.lines[i], f"column valid must be 0 or 1, got {flag[i]:g}"))
            valid &= flag == 1
        view = Viewport(
            1.0, 0.0, 0.0, float(case.width), float(case.height), case.window_center, case.window_width
        )
        if col["duration"] is not None:
            duration = numbers(low, col["duration"], errors, minimum=0)
            if errors:
                return [], errors
            times, owner = expand_fixations(t, duration, fixation_hz)
            kind = "fixations"
        else:
            times, owner = t, np.arange(len(table.rows), dtype=np.int64)
            kind = "samples"
        if errors:
            return [], errors
        xy = np.stack([x, y], axis=1)
        samples = build_samples(
            times, xy[owner], valid[owner], (case.width, case.height), view, eye_gaze=eye_gaze
        )
        lines = np.asarray(table.lines, dtype=np.int64)[owner]
    if errors:
        return [], errors
    info: dict[str, Any] = {"format": "csv", "file": path.name, "kind": kind}
    if kind == "fixations":
        info["fixation_hz"] = fixation_hz
    record = SessionRecord(
        case_ref=case_ref,
        reader=None,
        source="import",
        source_info={"import": info},
        display_info={"screen_w": float(case.width), "screen_h": float(case.height), "dpr": 1},
        samples=samples,
        lines=lines,
        path=path,
        key=f"csv:{path.name}:{case_ref}",
    )
    return [record], errors
