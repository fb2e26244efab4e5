"""Locating and parsing the cells of a plain CSV block with numpy, without Python objects.

The general parser's fast path for blocks that Arrow declined but that have no quotes and the
header's cell count on every row: cells are located by the byte offsets of commas and newlines,
and plain decimals are parsed with array arithmetic (exactly the values of a correct parse).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from trainer.arrays import FloatArray

_NL, _CR, _COMMA = 10, 13, 44
_PAD = 64
_DIGIT0, _DOT, _MINUS = 48, 46, 45
_POW10 = 10.0 ** np.arange(23)


@dataclass
class FastBlock:
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


def fast_block(block: bytes, first_line: int, width: int) -> FastBlock | None:
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
    return FastBlock(buf, line_start, line_end, grid.astype(np.int64, copy=False),
                      range(first_line, first_line + n))  # fmt: skip


def decimals(chars: NDArray[np.uint8]) -> FloatArray | None:
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


def fixed_decimals(chars: NDArray[np.uint8], lengths: NDArray[np.int64]) -> FloatArray | None:
    """Plain decimals that all have the same number of digits after the point (or none), as
    tracker exports write them, parsed with one matrix product.

    ``chars`` holds each cell right-aligned. With the point in the same column for every row,
    each digit column has a fixed power of ten; the digits times those powers sum to the exact
    integer m (at most 15 digits, so every partial sum is an exact float64 integer in any order),
    and m / 10^k is one correctly rounded division: the same values as ``decimals``. None when any
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


def fast_numbers(block: FastBlock, j: int, minimum: float | None) -> FloatArray | None:
    """The column parsed without Python objects, or None when some cell needs a closer look
    (empty, not a number, not finite, below the minimum)."""
    start, end = block.bounds(j)
    lengths = end - start
    width = int(lengths.max(initial=0))
    values = fixed_decimals(block.right_chars(end, width), lengths) if 0 < width <= 17 else None
    if values is not None:
        if minimum is not None and (values < minimum).any():
            return None
        return values
    chars = block.chars(j)
    values = decimals(chars) if chars.shape[1] <= 17 else None
    if values is None:
        try:
            values = np.ascontiguousarray(chars).view(f"S{chars.shape[1]}").ravel().astype(np.float64)
        except ValueError:
            return None
    if not np.isfinite(values).all() or (minimum is not None and (values < minimum).any()):
        return None
    return values
