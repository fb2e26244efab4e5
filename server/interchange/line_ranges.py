"""Cutting a CSV file into blocks of whole lines that worker threads read on their own.

Byte range ``[a, b)`` owns the lines that *start* inside it (a line starts at the first data byte
or right after a newline), so consecutive ranges cover every line exactly once and each worker
finds its block's ends with a short read around ``a`` and ``b``: no thread has to read the file
in order. This holds only while no quoted cell contains a newline; callers check that a block has
no quote character at all and otherwise read the file in order.
"""

from __future__ import annotations

import os

_PROBE = 64 * 1024


def next_line_start(fd: int, pos: int, size: int) -> int:
    """The offset just after the first newline at or after ``pos`` (``size`` when there is none)."""
    step = _PROBE
    while pos < size:
        piece = os.pread(fd, step, pos)
        if not piece:
            break
        found = piece.find(b"\n")
        if found >= 0:
            return pos + found + 1
        pos += len(piece)
        step *= 2
    return size


def read_lines(fd: int, a: int, b: int, first: int, size: int) -> bytes:
    """The lines starting in ``[a, b)``, each ending with a newline.

    Args:
        fd: The open file.
        a: Range start (>= ``first``).
        b: Range end.
        first: Offset of the first data line (after a header).
        size: File size.
    """
    start = a if a <= first else next_line_start(fd, a - 1, size)
    end = size if b >= size else next_line_start(fd, b - 1, size)
    if end <= start:
        return b""
    data = os.pread(fd, end - start, start)
    if end == size and not data.endswith(b"\n"):
        data += b"\n"
    return data
