"""Stored values: any numeric image as uint16 plus a linear map back to modality values.

The server keeps one array per image, ``pixels`` (H, W) uint16, with ``value_offset`` and
``value_scale`` so that ``modality = pixels * value_scale + value_offset``. For integer data whose
range fits in 16 bits (all 8-to-16-bit DICOM, PNG and JPEG) this is lossless: ``pixels`` holds the
original stored values, shifted by the data minimum only when they do not already fit in uint16
(signed data). Wider or floating-point data is quantised to 65,536 levels over its range.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

UINT16_LEVELS = 65536


@dataclass(frozen=True)
class StoredValues:
    """An image as uint16 stored values.

    Attributes:
        pixels: (H, W) uint16.
        shift: Original value of stored value 0 (before any rescale slope/intercept).
        step: Original-value difference between neighbouring stored values (1.0 when lossless).
        lossless: Whether ``pixels * step + shift`` reproduces the input exactly.
    """

    pixels: npt.NDArray[np.uint16]
    shift: float
    step: float
    lossless: bool


def to_stored_values(values: npt.NDArray[np.generic]) -> StoredValues:
    """Encode a 2-D numeric array as uint16 stored values.

    Args:
        values: (H, W) integer, boolean or floating-point array.

    Returns:
        The stored values and the affine map back to ``values``.

    Raises:
        ValueError: If ``values`` is not 2-D, is empty, or holds non-finite numbers.
    """
    if values.ndim != 2 or values.size == 0:
        raise ValueError(f"expected a non-empty 2-D array, got shape {values.shape}")
    if values.dtype == np.bool_:
        values = values.astype(np.uint8)
    if np.issubdtype(values.dtype, np.integer):
        lo, hi = int(values.min()), int(values.max())
        if lo >= 0 and hi < UINT16_LEVELS:
            return StoredValues(values.astype(np.uint16), 0.0, 1.0, True)
        if hi - lo < UINT16_LEVELS:
            shifted = (values.astype(np.int64) - lo).astype(np.uint16)
            return StoredValues(shifted, float(lo), 1.0, True)
    as_float = values.astype(np.float64)
    if not np.isfinite(as_float).all():
        raise ValueError("pixel values include NaN or infinity")
    flo, fhi = float(as_float.min()), float(as_float.max())
    if flo == fhi:
        return StoredValues(np.zeros(values.shape, np.uint16), flo, 1.0, True)
    step = (fhi - flo) / (UINT16_LEVELS - 1)
    quantised = np.rint((as_float - flo) / step).astype(np.uint16)
    exact = bool(np.array_equal(quantised * step + flo, as_float))
    return StoredValues(quantised, flo, step, exact)


def percentile_window(
    pixels: npt.NDArray[np.uint16],
    offset: float,
    scale: float,
    low_percent: float = 0.5,
    high_percent: float = 99.5,
) -> tuple[float, float]:
    """A default window (center, width) in modality units spanning two percentiles of the image.

    Falls back to the full value range when the percentiles coincide (a mostly flat image) and to a
    width of one stored step when the image is constant.

    Args:
        pixels: (H, W) uint16 stored values.
        offset: Modality value of stored value 0.
        scale: Modality units per stored step.
        low_percent: Lower percentile, in percent.
        high_percent: Upper percentile, in percent.

    Returns:
        (center, width) in modality units, using DICOM's convention that an integer range
        ``[lo, hi]`` is shown by width ``hi - lo + 1`` and center ``lo + width / 2``.
    """
    # Percentiles of uint16 data via a histogram: exact, and O(N) rather than a sort.
    # Bins up to the largest value only (counts above it are all zero, the percentiles are the same).
    counts = np.bincount(pixels.ravel(), minlength=1)
    cumulative = np.cumsum(counts)
    total = int(cumulative[-1])
    lo = int(np.searchsorted(cumulative, total * low_percent / 100.0, side="left"))
    hi = int(np.searchsorted(cumulative, total * high_percent / 100.0, side="left"))
    if hi <= lo:
        lo, hi = int(pixels.min()), int(pixels.max())
    return range_window(lo, hi, offset, scale)


def range_window(lo: int, hi: int, offset: float, scale: float) -> tuple[float, float]:
    """The window (center, width) in modality units that spans stored values ``lo..hi``.

    With ``scale == 1`` this is DICOM's exact convention: values ``<= lo`` show black and values
    ``>= hi`` show white; e.g. the 8-bit range 0..255 gives center 128, width 256 (identity display).
    """
    a, b = lo * scale + offset, hi * scale + offset
    low, high = min(a, b), max(a, b)
    step = abs(scale)
    width = high - low + step
    return low + width / 2.0, width
