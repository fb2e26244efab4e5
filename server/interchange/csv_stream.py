"""Reading large CSV files block by block, keeping only the columns a parser needs.

Public gaze files are large (EGD-CXR ``eye_gaze.csv``: ~1.5 M rows of ~40 columns, REFLACX
``gaze.csv``: 1,000 Hz). ``read_columns`` holds at most one block of raw rows at a time and turns
the needed columns into numpy arrays (numbers) or small integer codes (keys), so memory grows with
the *needed* columns only. Every bad value is still reported with its file line.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from server.interchange.records import RowError

FloatArray = NDArray[np.float64]
BLOCK_ROWS = 65_536


@dataclass(frozen=True)
class Number:
    """A numeric column to read.

    Attributes:
        name: Header name.
        allow_empty: Empty cells become NaN instead of an error.
        minimum: Smaller values are errors.
    """

    name: str
    allow_empty: bool = False
    minimum: float | None = None


@dataclass
class Columns:
    """The needed columns of a whole file.

    Attributes:
        path: The file.
        lines: ``(n,)`` 1-based file line of each row (header = line 1).
        numbers: Column name -> ``(n,)`` float64 (NaN where empty or bad).
        codes: Key column name -> ``(n,)`` int32 index into ``keys[name]``.
        keys: Key column name -> distinct values in order of first appearance.
    """

    path: Path
    lines: NDArray[np.int64]
    numbers: dict[str, FloatArray]
    codes: dict[str, NDArray[np.int32]]
    keys: dict[str, list[str]] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.lines.shape[0])


def read_header(path: Path, errors: list[RowError]) -> list[str] | None:
    """The stripped header names of ``path`` (None, with an error, when unreadable or empty)."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            header = next(csv.reader(handle), None)
    except OSError as exc:
        errors.append(RowError(path, None, f"cannot open: {exc.strerror or exc}"))
        return None
    except (csv.Error, UnicodeDecodeError) as exc:
        errors.append(RowError(path, 1, f"not readable as CSV: {exc}"))
        return None
    if header is None:
        errors.append(RowError(path, None, "file is empty (a header line is required)"))
        return None
    return [h.strip() for h in header]


def _blocks(path: Path, width: int, errors: list[RowError]) -> Iterator[tuple[list[list[str]], list[int]]]:
    """Data rows (padded to ``width``) and their start lines, ``BLOCK_ROWS`` at a time."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        next(reader, None)
        last = reader.line_num
        try:
            while True:
                raw = list(islice(reader, BLOCK_ROWS))
                if not raw:
                    return
                end = reader.line_num
                if end - last == len(raw):
                    # One physical line per row (the usual case): lines follow without counting.
                    lines = list(range(last + 1, end + 1))
                else:
                    # Quoted newlines somewhere in the block: count each row's start line.
                    lines, line = [], last + 1
                    for row in raw:
                        lines.append(line)
                        line += sum(cell.count("\n") for cell in row) + 1
                last = end
                rows, kept = raw, lines
                if any(len(r) != width for r in raw):
                    rows, kept = [], []
                    for row, line in zip(raw, lines, strict=True):
                        if not row or all(not cell.strip() for cell in row):
                            continue
                        if len(row) > width:
                            errors.append(
                                RowError(path, line, f"{len(row)} cells but the header has {width} columns")
                            )
                            continue
                        rows.append(row + [""] * (width - len(row)))
                        kept.append(line)
                yield rows, kept
        except (csv.Error, UnicodeDecodeError) as exc:
            errors.append(RowError(path, reader.line_num or None, f"not readable as CSV: {exc}"))


def _to_numbers(
    path: Path, cells: list[str], lines: list[int], spec: Number, errors: list[RowError]
) -> FloatArray:
    try:
        # Fast path: numpy parses the whole column in C.
        values = np.array(cells, dtype=np.float64)
        if np.isfinite(values).all() and (spec.minimum is None or (values >= spec.minimum).all()):
            return values
    except ValueError:
        pass
    values = np.full(len(cells), np.nan, dtype=np.float64)
    name = spec.name
    for i, cell in enumerate(cells):
        text = cell.strip()
        if text == "":
            if not spec.allow_empty:
                errors.append(RowError(path, lines[i], f"column {name} is empty"))
            continue
        try:
            value = float(text)
        except ValueError:
            errors.append(RowError(path, lines[i], f"column {name}: {cell!r} is not a number"))
            continue
        if not math.isfinite(value):
            errors.append(RowError(path, lines[i], f"column {name}: {cell!r} is not a finite number"))
            continue
        if spec.minimum is not None and value < spec.minimum:
            errors.append(RowError(path, lines[i], f"column {name}: {value:g} is below {spec.minimum:g}"))
            continue
        values[i] = value
    return values


def read_columns(
    path: Path,
    header: list[str],
    *,
    numbers: Sequence[Number],
    keys: Sequence[str] = (),
    errors: list[RowError],
) -> Columns:
    """Read the ``numbers`` and ``keys`` columns of ``path`` (all must be in ``header``).

    Problems go to ``errors`` (at most a few per column and block are worth reading, but all are
    kept so the count is right); bad numbers are NaN in the result.
    """
    index = {name: i for i, name in enumerate(header)}
    num_parts: dict[str, list[FloatArray]] = {s.name: [] for s in numbers}
    code_parts: dict[str, list[NDArray[np.int32]]] = {k: [] for k in keys}
    lookup: dict[str, dict[str, int]] = {k: {} for k in keys}
    line_parts: list[NDArray[np.int64]] = []
    for rows, lines in _blocks(path, len(header), errors):
        if not rows:
            continue
        line_parts.append(np.asarray(lines, dtype=np.int64))
        for spec in numbers:
            j = index[spec.name]
            num_parts[spec.name].append(_to_numbers(path, [r[j] for r in rows], lines, spec, errors))
        for key in keys:
            j = index[key]
            table = lookup[key]
            # Keys repeat for thousands of rows: store small codes, not one string per row.
            code_parts[key].append(
                np.fromiter(
                    (table.setdefault(r[j].strip(), len(table)) for r in rows),
                    dtype=np.int32,
                    count=len(rows),
                )
            )
    empty_f: FloatArray = np.zeros(0, dtype=np.float64)
    empty_i: NDArray[np.int32] = np.zeros(0, dtype=np.int32)
    return Columns(
        path=path,
        lines=np.concatenate(line_parts) if line_parts else np.zeros(0, dtype=np.int64),
        numbers={k: np.concatenate(v) if v else empty_f for k, v in num_parts.items()},
        codes={k: np.concatenate(v) if v else empty_i for k, v in code_parts.items()},
        keys={k: list(v) for k, v in lookup.items()},
    )
