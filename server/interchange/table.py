"""Reading CSV files with line numbers, so every bad value is reported where it is."""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from server.interchange.records import RowError
from trainer.arrays import FloatArray


@dataclass
class Table:
    """A CSV file's rows as text.

    Attributes:
        path: The file.
        header: Column names, stripped of surrounding whitespace.
        rows: Data rows (lists of cell text, padded to the header's length).
        lines: 1-based file line of each row (the header is line 1; quoted newlines are honoured).
    """

    path: Path
    header: list[str]
    rows: list[list[str]]
    lines: list[int]

    def has(self, *names: str) -> bool:
        return all(n in self.header for n in names)

    def first_of(self, *names: str) -> str | None:
        """The first of ``names`` that is a column, or None."""
        return next((n for n in names if n in self.header), None)

    def text(self, name: str) -> list[str]:
        i = self.header.index(name)
        return [row[i].strip() for row in self.rows]


def read_table(path: Path, errors: list[RowError]) -> Table | None:
    """Read ``path`` as CSV with a header line; problems go to ``errors``.

    Rows with more cells than the header are errors; shorter rows are padded with empty cells
    (trailing empty columns are often dropped by spreadsheet tools).
    """
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        errors.append(RowError(path, None, f"cannot open: {exc.strerror or exc}"))
        return None
    with handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, None)
            if header is None:
                errors.append(RowError(path, None, "file is empty (a header line is required)"))
                return None
            header = [h.strip() for h in header]
            rows: list[list[str]] = []
            lines: list[int] = []
            start = reader.line_num + 1
            for row in reader:
                line = start
                start = reader.line_num + 1
                if not row or all(not cell.strip() for cell in row):
                    continue
                if len(row) > len(header):
                    errors.append(
                        RowError(path, line, f"{len(row)} cells but the header has {len(header)} columns")
                    )
                    continue
                rows.append(row + [""] * (len(header) - len(row)))
                lines.append(line)
        except (csv.Error, UnicodeDecodeError) as exc:
            errors.append(RowError(path, reader.line_num or None, f"not readable as CSV: {exc}"))
            return None
    return Table(path=path, header=header, rows=rows, lines=lines)


def require_columns(table: Table, names: Sequence[str], errors: list[RowError]) -> bool:
    missing = [n for n in names if n not in table.header]
    if missing:
        errors.append(RowError(table.path, 1, f"missing column(s) {', '.join(missing)}"))
        return False
    return True


def numbers(
    table: Table,
    name: str,
    errors: list[RowError],
    *,
    allow_empty: bool = False,
    minimum: float | None = None,
) -> FloatArray:
    """Column ``name`` as floats; empty cells are NaN when ``allow_empty``, else errors.

    Non-numeric cells, non-finite numbers and values below ``minimum`` are reported with their
    line and returned as NaN.
    """
    values = np.full(len(table.rows), np.nan, dtype=np.float64)
    for i, cell in enumerate(table.text(name)):
        if cell == "":
            if not allow_empty:
                errors.append(RowError(table.path, table.lines[i], f"column {name} is empty"))
            continue
        try:
            value = float(cell)
        except ValueError:
            errors.append(RowError(table.path, table.lines[i], f"column {name}: {cell!r} is not a number"))
            continue
        if not math.isfinite(value):
            errors.append(
                RowError(table.path, table.lines[i], f"column {name}: {cell!r} is not a finite number")
            )
            continue
        if minimum is not None and value < minimum:
            errors.append(
                RowError(table.path, table.lines[i], f"column {name}: {value:g} is below {minimum:g}")
            )
            continue
        values[i] = value
    return values
