"""render_window against a per-pixel reference of DICOM PS3.3 C.11.2.1.2, and its properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.imaging import render_window


def reference_window(value: float, center: float, width: float) -> int:
    """Slow scalar transcription of the standard's LINEAR function (LINEAR_EXACT below width 1)."""
    if width > 1:
        if value <= center - 0.5 - (width - 1) / 2:
            y = 0.0
        elif value > center - 0.5 + (width - 1) / 2:
            y = 255.0
        else:
            y = ((value - (center - 0.5)) / (width - 1) + 0.5) * 255.0
    else:
        if value <= center - width / 2:
            y = 0.0
        elif value > center + width / 2:
            y = 255.0
        else:
            y = ((value - center) / width + 0.5) * 255.0
    return int(np.rint(y))


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    dtype=st.sampled_from([np.uint8, np.uint16, np.int16, np.int32]),
    offset=st.floats(-2000, 2000),
    scale=st.floats(0.01, 10),
    center=st.floats(-3000, 3000),
    width=st.floats(0.05, 5000),
    invert=st.booleans(),
)
def test_matches_reference(
    seed: int, dtype: type, offset: float, scale: float, center: float, width: float, invert: bool
) -> None:
    rng = np.random.default_rng(seed)
    info = np.iinfo(dtype)
    pixels: np.ndarray = rng.integers(
        max(info.min, -3000), min(info.max, 3000), size=(6, 7), endpoint=True
    ).astype(dtype)
    out = render_window(pixels, offset, scale, center, width, invert=invert)
    assert out.dtype == np.uint8 and out.shape == pixels.shape
    for (i, j), raw in np.ndenumerate(pixels):
        expected = reference_window(float(raw) * scale + offset, center, width)
        if invert:
            expected = 255 - expected
        # Exact except where float rounding lands on a .5 boundary.
        assert abs(int(out[i, j]) - expected) <= 1, (raw, out[i, j], expected)


def test_eight_bit_full_window_is_identity() -> None:
    pixels = np.arange(256, dtype=np.uint8).reshape(16, 16)
    np.testing.assert_array_equal(render_window(pixels, 0.0, 1.0, 128.0, 256.0), pixels)
    np.testing.assert_array_equal(render_window(pixels, 0.0, 1.0, 128.0, 256.0, invert=True), 255 - pixels)


def test_lookup_table_path_equals_direct_path() -> None:
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 4096, size=(40, 50)).astype(np.uint16)
    via_lut = render_window(pixels, -1024.0, 0.5, 100.0, 700.0)
    direct = render_window(pixels.astype(np.int32), -1024.0, 0.5, 100.0, 700.0)
    np.testing.assert_array_equal(via_lut, direct)


def test_monotonic_and_saturating() -> None:
    pixels = np.arange(0, 1000, dtype=np.uint16).reshape(1, -1)
    out = render_window(pixels, 0.0, 1.0, 500.0, 200.0)[0]
    assert (np.diff(out.astype(int)) >= 0).all()
    assert out[:400].max() == 0 and out[600:].min() == 255
    assert 0 < out[500] < 255


@pytest.mark.parametrize(
    ("center", "width", "message"),
    [(0.0, 0.0, "width"), (0.0, -5.0, "width"), (float("nan"), 10.0, "center"), (0.0, float("inf"), "width")],
)
def test_rejects_bad_window(center: float, width: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        render_window(np.zeros((2, 2), np.uint16), 0.0, 1.0, center, width)


def test_rejects_float_pixels() -> None:
    with pytest.raises(ValueError, match="integer"):
        render_window(np.zeros((2, 2), np.float32), 0.0, 1.0, 0.0, 10.0)
