"""Gaze sample layout: the 18 columns, the flag bits and the chunk byte encoding.

A sample is one row of 18 float64 values in the order of ``COLUMNS`` (see docs/gaze-protocol.md).
A chunk stores the samples of one received frame as ``encoding`` 1: row-major little-endian
float64, ``n_samples * 18 * 8`` bytes. float64 keeps every JSON number the client sent exactly, so
stored samples compare equal to the ones sent.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from typing import Final

import numpy as np

from trainer.arrays import FloatArray

COLUMNS: Final[tuple[str, ...]] = (
    "t_ms",
    "screen_x",
    "screen_y",
    "image_x",
    "image_y",
    "flags",
    "zoom",
    "pan_x",
    "pan_y",
    "wl_center",
    "wl_width",
    "img_left",
    "img_top",
    "img_width",
    "img_height",
    "screen_w",
    "screen_h",
    "dpr",
)
N_COLUMNS: Final = len(COLUMNS)
COLUMN: Final[dict[str, int]] = {name: i for i, name in enumerate(COLUMNS)}

# Flag bits (column "flags").
FLAG_VALID: Final = 1  # the source produced a point (tracker/face found)
FLAG_ON_IMAGE: Final = 2  # the point lies on the shown image
FLAG_VISIBLE: Final = 4  # the tab was visible
FLAG_EYE: Final = 8  # eye gaze (not mouse or replay)
MAX_FLAGS: Final = 255  # bits 16..128 are reserved and stored as sent

#: Layout version written to ``GazeChunk.encoding``.
ENCODING_F64_ROWS: Final = 1
_DTYPE: Final = np.dtype("<f8")


def encode(samples: FloatArray) -> bytes:
    """Chunk bytes for ``samples``.

    Args:
        samples: ``(n, 18)`` float64 samples in column order.

    Returns:
        ``n * 144`` bytes (encoding 1).
    """
    if samples.ndim != 2 or samples.shape[1] != N_COLUMNS:
        raise ValueError(f"samples must have shape (n, {N_COLUMNS}), got {samples.shape}")
    return np.ascontiguousarray(samples, dtype=_DTYPE).tobytes()


def decode(data: bytes, n_samples: int, encoding: int = ENCODING_F64_ROWS) -> FloatArray:
    """Samples stored in one chunk.

    Returns:
        ``(n_samples, 18)`` float64 array (a fresh, writable copy).
    """
    if encoding != ENCODING_F64_ROWS:
        raise ValueError(f"unknown gaze chunk encoding {encoding}")
    expected = n_samples * N_COLUMNS * _DTYPE.itemsize
    if len(data) != expected:
        raise ValueError(f"chunk holds {len(data)} bytes, expected {expected} for {n_samples} samples")
    return np.frombuffer(data, dtype=_DTYPE).reshape(n_samples, N_COLUMNS).astype(np.float64)


def concat(chunks: Iterable[FloatArray]) -> FloatArray:
    """All samples of a session, ``(m, 18)``, in the order the chunks are given."""
    parts = list(chunks)
    if not parts:
        return np.empty((0, N_COLUMNS), dtype=np.float64)
    return np.concatenate(parts, axis=0)


def _number(value: float, column: int) -> str:
    # Flags are integers; everything else keeps Python's shortest round-trip float text.
    if column == COLUMN["flags"]:
        return str(int(value))
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def csv_lines(samples: FloatArray) -> Iterator[str]:
    """CSV text for ``samples``: the header (column names), then one line per sample.

    Args:
        samples: ``(m, 18)`` samples.
    """
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    yield buf.getvalue()
    for row in samples:
        buf.seek(0)
        buf.truncate()
        writer.writerow([_number(v, c) for c, v in enumerate(row)])
        yield buf.getvalue()
