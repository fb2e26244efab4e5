"""Parsing a clean CSV block with Arrow's C++ CSV reader.

A full-size EGD-CXR ``eye_gaze.csv`` is ~300 MB of which an import needs six columns. Arrow's
reader skips the other columns without converting them and parses numbers in C++ (correctly
rounded, like Python's ``float``), releasing the GIL while it works, so blocks parse in parallel.

It is only the fast path: a block is handed back (None) whenever it is not plainly well-formed,
i.e. whenever Arrow and the ``csv`` module might disagree or a value needs an error message with
its file line (a cell count that differs from the header, a blank line, a lone carriage return,
an empty or non-numeric cell where a number is required, a value that is not finite or below its
minimum, text that is not UTF-8). The general parser then reads that block and reports each
problem exactly as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
from numpy.typing import NDArray

from trainer.arrays import FloatArray

_NL, _CR = 10, 13


def _values(array: pa.Array, dtype: type[np.generic]) -> NDArray[Any]:
    """The value buffer of a primitive Arrow array as numpy (a view, no copy).

    Read from the buffer directly: ``Array.to_numpy`` imports pandas when it is installed, which
    costs more than parsing a whole block.
    """
    item = np.dtype(dtype).itemsize
    return np.frombuffer(array.buffers()[1], dtype=dtype, count=len(array), offset=array.offset * item)


def _nulls(array: pa.Array) -> NDArray[np.bool_]:
    """True where ``array`` is null (from its validity bitmap)."""
    if array.null_count == 0:
        return np.zeros(len(array), dtype=bool)
    bits = np.unpackbits(np.frombuffer(array.buffers()[0], dtype=np.uint8), bitorder="little")
    return bits[array.offset : array.offset + len(array)] == 0


def _floats(column: pa.ChunkedArray) -> tuple[FloatArray, NDArray[np.bool_] | None]:
    """``column`` as one float64 array with NaN where null, and the null mask (None: no nulls)."""
    values = [_values(chunk, np.float64) for chunk in column.chunks]
    joined = np.concatenate(values) if values else np.zeros(0, dtype=np.float64)
    if not column.null_count:
        return joined, None
    nulls = np.concatenate([_nulls(chunk) for chunk in column.chunks])
    joined = np.where(nulls, np.nan, joined)
    return joined, nulls


@dataclass(frozen=True)
class NumberSpec:
    """A numeric column: its index, whether empty cells are NaN, the smallest allowed value."""

    column: int
    allow_empty: bool
    minimum: float | None


@dataclass
class ArrowBlock:
    """The needed columns of one block.

    Attributes:
        rows: Rows in the block (one per line).
        numbers: ``(rows,)`` float64 per requested number column, NaN where empty.
        keys: Per requested key column, runs of equal values: (stripped value of each run,
            ``(runs,)`` int64 run lengths).
    """

    rows: int
    numbers: list[FloatArray]
    keys: list[tuple[list[str], NDArray[np.int64]]]


def parse_clean_block(
    data: bytes, width: int, numbers: Sequence[NumberSpec], keys: Sequence[int]
) -> ArrowBlock | None:
    """Parse ``data`` (whole lines, each ending with a newline, no header, no quotes).

    Args:
        data: The block's bytes.
        width: Cells per row (the header's column count).
        numbers: Number columns to read.
        keys: Indices of key columns to read (as text).

    Returns:
        The columns, or None when the general parser must read this block (see the module notes).
    """
    number_cols = [s.column for s in numbers]
    if not data or not (number_cols or keys) or set(number_cols) & set(keys):
        return None
    if len(set(number_cols)) != len(number_cols) or len(set(keys)) != len(keys):
        return None
    buf = np.frombuffer(data, dtype=np.uint8)
    rows = int(np.count_nonzero(buf == _NL))
    # Arrow ends a line at a lone \r too; the general parser keeps it inside the cell.
    cr = np.flatnonzero(buf == _CR)
    if cr.size and (cr[-1] + 1 >= buf.shape[0] or (buf[cr + 1] != _NL).any()):
        return None
    names = [f"c{j}" for j in range(width)]
    types: dict[str, pa.DataType] = {names[j]: pa.float64() for j in number_cols}
    types |= {names[j]: pa.dictionary(pa.int32(), pa.string()) for j in keys}
    try:
        table = pa_csv.read_csv(
            pa.py_buffer(data),
            read_options=pa_csv.ReadOptions(column_names=names, use_threads=False, block_size=len(data) + 1),
            parse_options=pa_csv.ParseOptions(newlines_in_values=False, ignore_empty_lines=True),
            convert_options=pa_csv.ConvertOptions(
                include_columns=[names[j] for j in (*number_cols, *keys)],
                column_types=types,
                # Only an empty cell is "no value"; "NA", "null" etc. are errors for the general parser.
                null_values=[""],
                strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    # A skipped blank line would shift every later row's file line.
    if table.num_rows != rows:
        return None
    values_out: list[FloatArray] = []
    for spec in numbers:
        column = table.column(names[spec.column])
        if column.null_count and not spec.allow_empty:
            return None
        values, nulls = _floats(column)
        finite = np.isfinite(values)
        if not (finite.all() if nulls is None else (finite | nulls).all()):
            return None
        if spec.minimum is not None and (values < spec.minimum).any():
            return None
        values_out.append(values)
    keys_out: list[tuple[list[str], NDArray[np.int64]]] = []
    for j in keys:
        firsts: list[str] = []
        lengths: list[NDArray[np.int64]] = []
        for chunk in table.column(names[j]).chunks:
            codes = _values(chunk.indices, np.int32).astype(np.int64)
            if codes.shape[0] == 0:
                continue
            text = [v.strip() for v in chunk.dictionary.to_pylist()]
            # Keys come in long runs (one session, one image): one Python string per run.
            starts = np.flatnonzero(np.concatenate([[True], codes[1:] != codes[:-1]]))
            firsts += [text[c] for c in codes[starts].tolist()]
            lengths.append(np.diff(np.append(starts, codes.shape[0])))
        keys_out.append((firsts, np.concatenate(lengths) if lengths else np.zeros(0, dtype=np.int64)))
    return ArrowBlock(rows, values_out, keys_out)
