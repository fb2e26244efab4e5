"""Window/level rendering of stored values to 8-bit display pixels (DICOM PS3.3 C.11.2.1.2)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def _window_linear(modality: npt.NDArray[np.float64], center: float, width: float) -> npt.NDArray[np.float64]:
    """DICOM's window function on modality values, as floats in [0, 1].

    For ``width > 1`` this is the standard LINEAR function (with its half-unit offsets, so that
    center 128 / width 256 shows 8-bit data unchanged). LINEAR is undefined below width 1, which
    occurs for data with fine-grained modality units (e.g. small rescale slopes); there the
    LINEAR_EXACT form ``(x - c) / w + 0.5`` is used.
    """
    if width > 1.0:
        y = (modality - (center - 0.5)) / (width - 1.0) + 0.5
    else:
        y = (modality - center) / width + 0.5
    return np.clip(y, 0.0, 1.0)


def render_window(
    pixels: npt.NDArray[np.integer],
    offset: float,
    scale: float,
    center: float,
    width: float,
    invert: bool = False,
) -> npt.NDArray[np.uint8]:
    """Render stored values at a window center/width in modality units.

    Modality value = ``pixels * scale + offset``. For uint8/uint16 input the window is evaluated
    once per stored value up to the image's largest into a look-up table and applied with one
    gather, so the cost is one memory pass over the image whatever its size.

    Args:
        pixels: (H, W) stored values, any integer dtype (uint16 as produced by ingest).
        offset: Modality value of stored value 0.
        scale: Modality units per stored step.
        center: Window center in modality units.
        width: Window width in modality units; must be > 0.
        invert: Show high values dark (MONOCHROME1 images).

    Returns:
        (H, W) uint8 display values.

    Raises:
        ValueError: If ``width`` is not a positive finite number, or ``center``, ``offset`` or
            ``scale`` is not finite, or ``pixels`` is not an integer array.
    """
    for name, value in (("center", center), ("offset", offset), ("scale", scale), ("width", width)):
        if not np.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value!r}")
    if width <= 0:
        raise ValueError(f"window width must be > 0, got {width!r}")
    if not np.issubdtype(pixels.dtype, np.integer):
        raise ValueError(f"pixels must be an integer array, got dtype {pixels.dtype}")
    if pixels.dtype in (np.uint8, np.uint16):
        # Codes up to the image's largest value only: 12-bit data then needs 1/16 of a uint16 table.
        codes = np.arange(int(pixels.max()) + 1 if pixels.size else 1, dtype=np.float64)
        lut = _to_uint8(_window_linear(codes * scale + offset, center, width), invert)
        return lut[pixels]
    modality = pixels.astype(np.float64) * scale + offset
    return _to_uint8(_window_linear(modality, center, width), invert)


def _to_uint8(unit: npt.NDArray[np.float64], invert: bool) -> npt.NDArray[np.uint8]:
    display = np.rint(unit * 255.0).astype(np.uint8)
    return 255 - display if invert else display
