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
_NL, _CR, _COMMA, _QUOTE = 10, 13, 44, 34
_PAD = 64
_DIGIT0, _DOT, _MINUS = 48, 46, 45
_POW10 = 10.0 ** np.arange(23)


@dataclass
class _FastBlock:
    """Rows of a block without quotes, every row with exactly the header's cell count: cells are
    located by their byte offsets and never become Python strings."""

    buf: NDArray[np.uint8]
    line_start: NDArray[np.int64]
    line_end: NDArray[np.int64]
    commas: NDArray[np.int64]
    lines: range
    _padded: NDArray[np.uint8] | None = None
    _front_padded: NDArray[np.uint8] | None = None

    def chars(self, j: int) -> NDArray[np.uint8]:
        """Cells of column ``j`` as an ``(n, width)`` byte matrix, zero-padded on the right."""
        start = self.line_start if j == 0 else self.commas[:, j - 1] + 1
        end = self.line_end if j == self.commas.shape[1] else self.commas[:, j]
        lengths = end - start
        width = max(int(lengths.max(initial=0)), 1)
        if width <= _PAD:
            # Rows of a strided view starting at every cell: one gather, no index matrix.
            windows = np.lib.stride_tricks.as_strided(
                self.padded, shape=(self.buf.shape[0], width), strides=(1, 1), writeable=False
            )
            chars = windows[start]
        else:
            chars = self.padded[np.minimum(start[:, None] + np.arange(width), self.padded.shape[0] - 1)]
        chars *= np.arange(width) < lengths[:, None]
        return chars

    def bounds(self, j: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Start and end offsets of column ``j``'s cells."""
        start = self.line_start if j == 0 else self.commas[:, j - 1] + 1
        end = self.line_end if j == self.commas.shape[1] else self.commas[:, j]
        return start, end

    def right_chars(self, end: NDArray[np.int64], width: int) -> NDArray[np.uint8]:
        """The ``width`` (<= 64) bytes before each offset of ``end``: cells right-aligned in an
        ``(n, width)`` byte matrix (bytes left of a shorter cell are not masked)."""
        # The padded buffer starts _PAD zero bytes early, so end - width never falls before it.
        windows = np.lib.stride_tricks.as_strided(
            self.front_padded, shape=(self.buf.shape[0] + _PAD, width), strides=(1, 1), writeable=False
        )
        return windows[end + _PAD - width]

    @property
    def front_padded(self) -> NDArray[np.uint8]:
        if self._front_padded is None:
            zeros = np.zeros(_PAD, dtype=np.uint8)
            self._front_padded = np.concatenate([zeros, self.buf, zeros])
        return self._front_padded

    def column(self, j: int) -> NDArray[np.bytes_]:
        """Cells of column ``j`` as a fixed-width bytes array."""
        chars = self.chars(j)
        return np.ascontiguousarray(chars).view(f"S{chars.shape[1]}").ravel()

    @property
    def padded(self) -> NDArray[np.uint8]:
        if self._padded is None:
            self._padded = np.concatenate([self.buf, np.zeros(_PAD, dtype=np.uint8)])
        return self._padded

    def cells(self, j: int) -> list[str]:
        return [c.decode("utf-8", "replace") for c in self.column(j).tolist()]


@dataclass
class _SlowBlock:
    """Rows parsed by the csv module (quotes, short or long rows, blank lines)."""

    rows: list[list[str]]
    lines: list[int]

    def cells(self, j: int) -> list[str]:
        return [r[j] for r in self.rows]


def _fast(block: bytes, first_line: int, width: int) -> _FastBlock | None:
    buf = np.frombuffer(block, dtype=np.uint8)
    nl = np.flatnonzero(buf == _NL)
    commas = np.flatnonzero(buf == _COMMA)
    n = nl.shape[0]
    if n == 0 or commas.shape[0] != n * (width - 1):
        return None
    grid = commas.reshape(n, width - 1)
    # Sorted offsets and the right total: every row has width - 1 commas exactly when each row's
    # last comma lies before its newline and the next row's first comma after it.
    if width > 1 and ((grid[:, -1] > nl).any() or (grid[1:, 0] < nl[:-1]).any()):
        return None
    line_start = np.concatenate([[0], nl[:-1] + 1]).astype(np.int64)
    crlf = np.zeros(n, dtype=bool)
    crlf[nl > 0] = buf[nl[nl > 0] - 1] == _CR
    line_end = (nl - crlf).astype(np.int64)
    if (line_end <= line_start).any():
        return None  # a blank line: let the csv module skip it
    return _FastBlock(buf, line_start, line_end, grid.astype(np.int64, copy=False),
                      range(first_line, first_line + n))  # fmt: skip


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
) -> _FastBlock | _SlowBlock | None:
    """One raw block's rows (None, with an error, when it is not UTF-8 text)."""
    fast = None if b'"' in data else _fast(data, line, width)
    if fast is not None:
        return fast
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        errors.append(RowError(path, line, f"not readable as UTF-8 text: {exc}"))
        return None
    return _slow(text, line, width, path, errors)


def _decimals(chars: NDArray[np.uint8]) -> FloatArray | None:
    """Plain decimals (``-12.345``: at most 15 digits, no exponent) parsed with array arithmetic.

    The digits form an exact integer m and the value is m / 10^k, one correctly rounded division,
    so the result equals a correct parse of the text. None when any cell is something else.
    """
    n, width = chars.shape
    digit = (chars >= _DIGIT0) & (chars <= _DIGIT0 + 9)
    dot = chars == _DOT
    minus = chars == _MINUS
    if not (digit | dot | minus | (chars == 0)).all():
        return None
    if minus[:, 1:].any() or (dot.sum(axis=1) > 1).any():
        return None
    n_digits = digit.sum(axis=1)
    if (n_digits == 0).any() or (n_digits > 15).any():
        return None
    mantissa = np.zeros(n, dtype=np.int64)
    for k in range(width):
        d = digit[:, k]
        mantissa = np.where(d, mantissa * 10 + (chars[:, k].astype(np.int64) - _DIGIT0), mantissa)
    has_dot = dot.any(axis=1)
    dot_at = np.where(has_dot, dot.argmax(axis=1), width)
    after = (digit & (np.arange(width) > dot_at[:, None])).sum(axis=1)
    values = mantissa.astype(np.float64) / _POW10[after]
    return np.where(minus[:, 0], -values, values)


def _fixed_decimals(chars: NDArray[np.uint8], lengths: NDArray[np.int64]) -> FloatArray | None:
    """Plain decimals that all have the same number of digits after the point (or none), as
    tracker exports write them, parsed with one matrix product.

    ``chars`` holds each cell right-aligned. With the point in the same column for every row,
    each digit column has a fixed power of ten; the digits times those powers sum to the exact
    integer m (at most 15 digits, so every partial sum is an exact float64 integer in any order),
    and m / 10^k is one correctly rounded division: the same values as ``_decimals``. None when any
    cell is something else (the general parsers decide then).
    """
    n, width = chars.shape
    if n == 0 or lengths.min() < 1 or lengths.max() > width:
        return None
    first = width - lengths
    inside = np.arange(width) >= first[:, None]
    negative = chars[np.arange(n), first] == _MINUS
    if negative.any():
        # A sign only as the first character, and never alone.
        if (lengths[negative] < 2).any():
            return None
        inside[np.flatnonzero(negative), first[negative]] = False
    dots = np.count_nonzero((chars == _DOT) & inside, axis=0)
    # The power of ten of each column's digit: 0 for the last column, one more per column leftwards,
    # not counting the point's column.
    exponents = np.arange(width - 1, -1, -1)
    places = 0
    if dots.any():
        column = int(np.flatnonzero(dots)[-1])
        if dots[column] != n or int(dots.sum()) != n:
            return None  # points in different places, or missing in some rows
        places = width - 1 - column
        inside[:, column] = False
        exponents[:column] -= 1
        exponents[column] = 0
    digits = chars - np.uint8(_DIGIT0)
    digits *= inside
    if (digits > 9).any():
        return None
    n_digits = np.count_nonzero(inside, axis=1)
    if n_digits.min() < 1 or n_digits.max() > 15:
        return None
    mantissa = digits.astype(np.float64) @ _POW10[exponents]
    values = mantissa / _POW10[places]
    return np.where(negative, -values, values)


def _fast_numbers(block: _FastBlock, j: int, spec: Number) -> FloatArray | None:
    """The column parsed without Python objects, or None when some cell needs a closer look
    (empty, not a number, not finite, below the minimum)."""
    start, end = block.bounds(j)
    lengths = end - start
    width = int(lengths.max(initial=0))
    values = _fixed_decimals(block.right_chars(end, width), lengths) if 0 < width <= 17 else None
    if values is not None:
        if spec.minimum is not None and (values < spec.minimum).any():
            return None
        return values
    chars = block.chars(j)
    values = _decimals(chars) if chars.shape[1] <= 17 else None
    if values is None:
        try:
            values = np.ascontiguousarray(chars).view(f"S{chars.shape[1]}").ravel().astype(np.float64)
        except ValueError:
            return None
    if not np.isfinite(values).all() or (spec.minimum is not None and (values < spec.minimum).any()):
        return None
    return values


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
        values = _fast_numbers(block, j, spec) if isinstance(block, _FastBlock) and len(lines) else None
        if values is None:
            values = _to_numbers(path, block.cells(j), lines, spec, errors)
        values_out.append(values)
    keys_out: list[tuple[list[str], NDArray[np.int64]]] = []
    for j in keys:
        if isinstance(block, _FastBlock):
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
