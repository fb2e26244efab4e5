"""Stored values: lossless for integer data up to 16 bits, bounded error beyond; default windows."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from server.imaging.values import percentile_window, range_window, to_stored_values


@settings(max_examples=80, deadline=None)
@given(
    hnp.arrays(
        dtype=st.sampled_from([np.uint8, np.int8, np.uint16, np.int16]),
        shape=hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=12),
    )
)
def test_integer_data_up_to_16_bits_round_trips_exactly(values: np.ndarray) -> None:
    stored = to_stored_values(values)
    assert stored.pixels.dtype == np.uint16 and stored.lossless
    np.testing.assert_array_equal(stored.pixels * stored.step + stored.shift, values)


def test_unsigned_data_is_kept_unshifted() -> None:
    values = np.array([[0, 4095], [17, 300]], np.uint16)
    stored = to_stored_values(values)
    assert stored.shift == 0.0 and stored.step == 1.0
    np.testing.assert_array_equal(stored.pixels, values)


def test_signed_data_is_shifted_by_its_minimum() -> None:
    values = np.array([[-1024, 0], [3071, -5]], np.int16)
    stored = to_stored_values(values)
    assert stored.shift == -1024.0
    assert stored.pixels.min() == 0


def test_wide_integer_range_is_quantised_with_bounded_error() -> None:
    values = np.array([[0, 1_000_000], [123_457, 999_999]], np.int32)
    stored = to_stored_values(values)
    assert not stored.lossless
    assert stored.step == pytest.approx(1_000_000 / 65535)
    error = np.abs(stored.pixels * stored.step + stored.shift - values)
    assert error.max() <= stored.step / 2 + 1e-9


def test_int32_with_narrow_range_stays_lossless() -> None:
    values = np.array([[100_000, 100_500]], np.int32)
    stored = to_stored_values(values)
    assert stored.lossless
    np.testing.assert_array_equal(stored.pixels * stored.step + stored.shift, values)


def test_non_finite_and_bad_shapes_are_rejected() -> None:
    with pytest.raises(ValueError, match="NaN"):
        to_stored_values(np.array([[1.0, np.nan]]))
    with pytest.raises(ValueError, match="2-D"):
        to_stored_values(np.zeros((2, 2, 3), np.uint8))


def test_percentile_window_spans_the_bulk_of_the_values() -> None:
    pixels = np.arange(1000, dtype=np.uint16).reshape(25, 40)
    center, width = percentile_window(pixels, offset=-500.0, scale=2.0)
    low, high = center - width / 2, center + width / 2
    # 0.5th and 99.5th percentiles of 0..999 are 5 and 995 -> modality -490 and 1490.
    assert low == pytest.approx(-490.0, abs=4)
    assert high == pytest.approx(1490.0 + 2.0, abs=4)


def test_percentile_window_of_constant_image_has_positive_width() -> None:
    center, width = percentile_window(np.full((4, 4), 7, np.uint16), offset=0.0, scale=1.0)
    assert width > 0 and center == pytest.approx(7.5)


def test_range_window_uses_dicom_convention() -> None:
    assert range_window(0, 255, 0.0, 1.0) == (128.0, 256.0)
    assert range_window(0, 65535, 0.0, 1.0) == (32768.0, 65536.0)
