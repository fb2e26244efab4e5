"""Reading large CSV files block by block, keeping only the columns a parser needs.

Public gaze files are large (EGD-CXR ``eye_gaze.csv``: ~1.5 M rows of ~40 columns, REFLACX
``gaze.csv``: 1,000 Hz). ``read_columns`` holds at most one block of raw rows at a time and turns
the needed columns into numpy arrays (numbers) or small integer codes (keys), so memory grows with
the *needed* columns only. Every bad value is still reported with its file line.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

from server.interchange.arrow_block import ArrowBlock, NumberSpec, parse_clean_block
from server.interchange.line_ranges import read_lines
from server.interchange.numpy_block import FastBlock, fast_block, fast_numbers
from server.interchange.records import RowError
from trainer.arrays import FloatArray


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


_T = TypeVar("_T")

CHUNK_BYTES = 4 * 1024 * 1024
_NL, _QUOTE = 10, 34


@dataclass
class _SlowBlock:
    """Rows parsed by the csv module (quotes, short or long rows, blank lines)."""

    rows: list[list[str]]
    lines: list[int]

    def cells(self, j: int) -> list[str]:
        return [r[j] for r in self.rows]


def _slow(text: str, first_line: int, width: int, path: Path, errors: list[RowError]) -> _SlowBlock:
    rows: list[list[str]] = []
    kept: list[int] = []
    reader = csv.reader(io.StringIO(text))
    last = 0
    try:
        for row in reader:
            line = first_line + last
            last = reader.line_num
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) > width:
                errors.append(RowError(path, line, f"{len(row)} cells but the header has {width} columns"))
                continue
            rows.append(row + [""] * (width - len(row)))
            kept.append(line)
    except csv.Error as exc:
        errors.append(RowError(path, first_line + reader.line_num, f"not readable as CSV: {exc}"))
    return _SlowBlock(rows, kept)


def _cut(data: bytes) -> int:
    """Where a block may end: after the last newline that is not inside a quoted cell (0: none)."""
    cut = data.rfind(b"\n") + 1
    if cut == 0 or b'"' not in data[:cut]:
        return cut
    buf = np.frombuffer(data, dtype=np.uint8, count=cut)
    quotes = np.cumsum(buf == _QUOTE)
    nl = np.flatnonzero(buf == _NL)
    even = nl[quotes[nl] % 2 == 0]
    return int(even[-1]) + 1 if even.size else 0


def _header_lines(path: Path) -> int:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        next(reader, None)
        return reader.line_num


def _raw_blocks(path: Path) -> Iterator[tuple[bytes, int]]:
    """The data rows of ``path`` in blocks of about ``CHUNK_BYTES``, each ending with a newline
    outside quotes, with the file line of its first row."""
    line = _header_lines(path) + 1
    with path.open("rb") as handle:
        head = handle.read(3)
        pending = head[3:] if head.startswith(b"\xef\xbb\xbf") else head
        skip = line - 1
        while skip:
            chunk = handle.read(CHUNK_BYTES)
            pending += chunk
            found = 0
            for _ in range(skip):
                found = pending.find(b"\n", found) + 1
                if found == 0:
                    break
                skip -= 1
            if found:
                pending = pending[found:]
            if not chunk:
                break
        while True:
            chunk = handle.read(CHUNK_BYTES)
            data = pending + chunk
            if chunk:
                cut = _cut(data)
                if cut == 0:
                    pending = data
                    continue
                block, pending = data[:cut], data[cut:]
            else:
                block, pending = data, b""
                if not block.strip():
                    return
                if not block.endswith(b"\n"):
                    block += b"\n"
            yield block, line
            line += block.count(b"\n")
            if not chunk:
                return


def _block(
    path: Path, data: bytes, line: int, width: int, errors: list[RowError]
) -> FastBlock | _SlowBlock | None:
    """One raw block's rows (None, with an error, when it is not UTF-8 text)."""
    fast = None if b'"' in data else fast_block(data, line, width)
    if fast is not None:
        return fast
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        errors.append(RowError(path, line, f"not readable as UTF-8 text: {exc}"))
        return None
    return _slow(text, line, width, path, errors)


def _to_numbers(
    path: Path, cells: list[str], lines: Sequence[int], spec: Number, errors: list[RowError]
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


#: Threads parsing blocks; the reading thread hands them blocks and takes results in order.
PARSE_THREADS = 2


@dataclass
class _Parsed:
    """The needed columns of one block (``lines`` None: the block was not text)."""

    lines: NDArray[np.int64] | None
    numbers: list[FloatArray]
    keys: list[tuple[list[str], NDArray[np.int64]]]
    errors: list[RowError]


def _parse_block(
    path: Path,
    data: bytes,
    line: int,
    width: int,
    numbers: Sequence[tuple[Number, int]],
    keys: Sequence[int],
    try_arrow: bool = True,
) -> _Parsed:
    """Parse one block: numbers by column, keys as runs of equal values (first value, length)."""
    if try_arrow and b'"' not in data:
        specs = [NumberSpec(j, spec.allow_empty, spec.minimum) for spec, j in numbers]
        clean = parse_clean_block(data, width, specs, keys)
        if clean is not None:
            return _Parsed(np.arange(line, line + clean.rows, dtype=np.int64), clean.numbers, clean.keys, [])
    errors: list[RowError] = []
    block = _block(path, data, line, width, errors)
    if block is None:
        return _Parsed(None, [], [], errors)
    lines = block.lines
    if isinstance(lines, range):
        line_array = np.arange(lines.start, lines.stop, dtype=np.int64)
    else:
        line_array = np.asarray(lines, dtype=np.int64)
    values_out: list[FloatArray] = []
    for spec, j in numbers:
        values = fast_numbers(block, j, spec.minimum) if isinstance(block, FastBlock) and len(lines) else None
        if values is None:
            values = _to_numbers(path, block.cells(j), lines, spec, errors)
        values_out.append(values)
    keys_out: list[tuple[list[str], NDArray[np.int64]]] = []
    for j in keys:
        if isinstance(block, FastBlock):
            if not len(lines):
                keys_out.append(([], np.zeros(0, dtype=np.int64)))
                continue
            # Keys come in long runs (one session, one image): decode each run's value once.
            cells = block.column(j)
            starts = np.flatnonzero(np.concatenate([[True], cells[1:] != cells[:-1]]))
            firsts = [v.decode("utf-8", "replace").strip() for v in cells[starts].tolist()]
            keys_out.append((firsts, np.diff(np.append(starts, cells.shape[0]))))
        else:
            texts = [c.strip() for c in block.cells(j)]
            keys_out.append((texts, np.ones(len(texts), dtype=np.int64)))
    return _Parsed(line_array, values_out, keys_out, errors)


class _Quoted(Exception):
    """A block holds a quote character, so byte ranges may split a quoted cell."""


def _ordered(pool: ThreadPoolExecutor, jobs: Iterator[Callable[[], _T]]) -> Iterator[_T]:
    """Run ``jobs`` on ``pool``, a few ahead, yielding their results in order."""
    in_flight: deque[Future[_T]] = deque()
    try:
        while True:
            while len(in_flight) <= PARSE_THREADS:
                job = next(jobs, None)
                if job is None:
                    break
                in_flight.append(pool.submit(job))
            if not in_flight:
                return
            yield in_flight.popleft().result()
    finally:
        # Let running jobs finish before the caller releases what they use (an open file).
        for future in in_flight:
            future.cancel()
        wait(in_flight)


def _data_start(path: Path) -> tuple[int, int]:
    """Byte offset and file line of the first data row (after a BOM and the header)."""
    line = _header_lines(path) + 1
    with path.open("rb") as handle:
        head = handle.read(3)
        offset = 3 if head.startswith(b"\xef\xbb\xbf") else 0
        handle.seek(offset)
        for _ in range(line - 1):
            if not handle.readline():
                break
        return handle.tell(), line


def _range_blocks(
    path: Path,
    pool: ThreadPoolExecutor,
    width: int,
    numbers: Sequence[tuple[Number, int]],
    keys: Sequence[int],
) -> Iterator[_Parsed]:
    """Blocks of about ``CHUNK_BYTES`` that the worker threads read and parse on their own (see
    ``line_ranges``), in file order.

    Raises:
        _Quoted: a block holds a quote character (the caller reads the file in order instead).
    """
    first, line = _data_start(path)
    size = path.stat().st_size
    specs = [NumberSpec(j, spec.allow_empty, spec.minimum) for spec, j in numbers]
    fd = os.open(path, os.O_RDONLY)

    def job(a: int) -> tuple[bytes, ArrowBlock | None, int]:
        data = read_lines(fd, a, a + CHUNK_BYTES, first, size)
        if b'"' in data:
            return data, None, -1
        clean = parse_clean_block(data, width, specs, keys) if data else None
        rows = (
            clean.rows if clean is not None else int(np.count_nonzero(np.frombuffer(data, np.uint8) == _NL))
        )
        return data, clean, rows

    try:
        for data, clean, rows in _ordered(pool, (partial(job, a) for a in range(first, size, CHUNK_BYTES))):
            if rows < 0:
                raise _Quoted
            if clean is not None:
                lines = np.arange(line, line + rows, dtype=np.int64)
                yield _Parsed(lines, clean.numbers, clean.keys, [])
            elif data:
                # Not plainly well-formed: the general parser reads it (rare, so in this thread).
                yield _parse_block(path, data, line, width, numbers, keys, try_arrow=False)
            line += rows
    finally:
        os.close(fd)


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
    width = len(header)
    n_errors = len(errors)

    number_cols = [(s, index[s.name]) for s in numbers]
    key_cols = [index[k] for k in keys]

    def add(parsed: _Parsed) -> bool:
        """Take one block's columns; False when reading must stop."""
        errors.extend(parsed.errors)
        if parsed.lines is None:
            return False  # not text: the rest cannot be trusted either
        if parsed.lines.shape[0] == 0:
            return True
        line_parts.append(parsed.lines)
        for spec, values in zip(numbers, parsed.numbers, strict=True):
            num_parts[spec.name].append(values)
        for key, (firsts, runs) in zip(keys, parsed.keys, strict=True):
            # Keys repeat for thousands of rows: store small codes, not one string per row.
            table = lookup[key]
            codes = np.array([table.setdefault(v, len(table)) for v in firsts], dtype=np.int32)
            code_parts[key].append(np.repeat(codes, runs))
        return True

    # Blocks are parsed on worker threads (Arrow and numpy release the GIL) and their results
    # taken in file order; at most a few blocks are in flight, so memory stays bounded.
    with ThreadPoolExecutor(max_workers=PARSE_THREADS) as pool:
        try:
            for parsed in _range_blocks(path, pool, width, number_cols, key_cols):
                if not add(parsed):
                    break
        except _Quoted:
            # A quoted cell may hold a newline: start again, reading the file in order.
            line_parts.clear()
            for values in num_parts.values():
                values.clear()
            for codes in code_parts.values():
                codes.clear()
            for table in lookup.values():
                table.clear()
            del errors[n_errors:]
            in_order = (
                partial(_parse_block, path, data, line, width, number_cols, key_cols)
                for data, line in _raw_blocks(path)
            )
            for parsed in _ordered(pool, in_order):
                if not add(parsed):
                    break
    empty_f: FloatArray = np.zeros(0, dtype=np.float64)
    empty_i: NDArray[np.int32] = np.zeros(0, dtype=np.int32)
    return Columns(
        path=path,
        lines=np.concatenate(line_parts) if line_parts else np.zeros(0, dtype=np.int64),
        numbers={k: np.concatenate(v) if v else empty_f for k, v in num_parts.items()},
        codes={k: np.concatenate(v) if v else empty_i for k, v in code_parts.items()},
        keys={k: list(v) for k, v in lookup.items()},
    )
