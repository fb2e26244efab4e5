"""Heatmaps, gaze moments, dHash and correlation: values against slow references and properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from bench.pairs import paper_moments as paper_style_moments
from trainer.gaze import (
    case_heatmap,
    dhash,
    dhash_similarity,
    gaussian_heatmap,
    heatmap_correlation,
    moment_features,
    moment_similarity,
)
from trainer.gaze.dhash import dhash_batch, dhash_similarity_tiles
from trainer.gaze.moments import moment_features_batch, moment_similarity_tiles


def test_heatmap_peaks_at_fixation_and_weights_duration() -> None:
    fix = np.array([[80.0, 240.0, 0.2], [410.0, 105.0, 0.8]])
    hm = gaussian_heatmap(fix, (512, 512), (32, 32), sigma_px=20.0)
    assert hm.shape == (32, 32) and hm.dtype == np.float64
    r, c = np.unravel_index(np.argmax(hm), hm.shape)
    assert (r, c) == (105 * 32 // 512, 410 * 32 // 512)  # the longer fixation dominates
    assert hm.max() == pytest.approx(1.0)
    # 1 degree sigma when pixels-per-degree is known.
    wide = gaussian_heatmap(fix, (512, 512), (32, 32), pixels_per_degree=60.0)
    narrow = gaussian_heatmap(fix, (512, 512), (32, 32), pixels_per_degree=15.0)
    assert (wide > 0.5).sum() > (narrow > 0.5).sum()
    assert not gaussian_heatmap(np.zeros((0, 3)), (512, 512)).any()


def test_case_heatmap_averages_sessions_equally() -> None:
    a = gaussian_heatmap([[104, 104, 5.0]], (512, 512), normalise="none", sigma_px=15)  # cell centres
    b = gaussian_heatmap([[408, 408, 0.1]], (512, 512), normalise="none", sigma_px=15)
    agg = case_heatmap([a, b], normalise="sum")
    assert agg.sum() == pytest.approx(1.0)
    near, far = 104 * 32 // 512, 408 * 32 // 512
    assert agg[near, near] == pytest.approx(agg[far, far], rel=1e-6)


def test_moments_equal_per_pixel_loop_and_do_not_overflow_on_uint8() -> None:
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, size=(32, 32)).astype(np.uint8)
    m00, i1 = moment_features(img)
    ref = paper_style_moments(img)
    assert m00 == pytest.approx(ref[0], rel=1e-12)
    assert i1 == pytest.approx(ref[1], rel=1e-10)
    assert m00 > 255  # a uint8 accumulator would have wrapped
    batch = moment_features_batch(np.stack([img, img.T]))
    assert batch[0, 0] == m00 and batch[1, 1] == pytest.approx(i1, rel=1e-12)


def test_moment_similarity_formula_and_weights() -> None:
    fa, fb = np.array([10.0, 2.0]), np.array([5.0, 4.0])
    assert moment_similarity(fa, fb, (0.5, 0.5)) == pytest.approx(1 - (0.5 * 0.5 + 0.5 * 0.5))
    assert moment_similarity(fa, fb, (0.8, 0.2)) == pytest.approx(1 - (0.8 * 0.5 + 0.2 * 0.5))
    assert moment_similarity([0.0, 0.0], [0.0, 0.0]) == 1.0
    assert moment_similarity([0.0, 0.0], [3.0, 1.0]) == 0.0
    with pytest.raises(ValueError, match="sum to 1"):
        moment_similarity(fa, fb, (0.7, 0.7))


def test_tiles_equal_direct_computation() -> None:
    rng = np.random.default_rng(0)
    f = rng.uniform(0, 50, (37, 2))
    full = moment_similarity(f[:, None], f[None, :])
    got = np.zeros_like(full)
    for r, c, block in moment_similarity_tiles(f, f, tile=10):
        got[r : r + block.shape[0], c : c + block.shape[1]] = block
    assert np.array_equal(got, full)
    bits = rng.random((23, 64)) > 0.5
    ref = dhash_similarity(bits[:, None], bits[None, :])
    for r, c, block in dhash_similarity_tiles(bits, bits, tile=7):
        np.testing.assert_allclose(block, ref[r : r + block.shape[0], c : c + block.shape[1]], atol=1e-12)


def test_dhash_bits_follow_horizontal_gradient() -> None:
    ramp = np.tile(np.arange(36.0), (32, 1))
    assert dhash(ramp).all()
    assert not dhash(ramp[:, ::-1]).any()
    assert dhash_similarity(dhash(ramp), dhash(ramp[:, ::-1])) == 0.0
    assert dhash_similarity(np.zeros(64, bool), np.zeros(64, bool)) == 1.0


def test_correlation_is_one_for_scaled_maps_and_half_for_flat() -> None:
    rng = np.random.default_rng(1)
    a = rng.random((32, 32))
    assert heatmap_correlation(a, 3 * a + 1) == pytest.approx(1.0)
    assert heatmap_correlation(a, -a) == pytest.approx(0.0)
    assert heatmap_correlation(a, np.ones((32, 32))) == 0.5


maps = arrays(np.float64, (16, 16), elements=st.floats(0.0, 1.0, allow_nan=False, width=32))
feature = arrays(np.float64, (2,), elements=st.floats(0.0, 1e4, allow_nan=False))


@settings(max_examples=60, deadline=None)
@given(a=feature, b=feature, w=st.floats(0.0, 1.0))
def test_moment_similarity_properties(a: np.ndarray, b: np.ndarray, w: float) -> None:
    weights = (w, 1.0 - w)
    s = float(moment_similarity(a, b, weights))
    assert 0.0 <= s <= 1.0
    assert s == float(moment_similarity(b, a, weights))
    assert float(moment_similarity(a, a, weights)) == 1.0


@settings(max_examples=60, deadline=None)
@given(a=maps, b=maps)
def test_hash_and_correlation_properties(a: np.ndarray, b: np.ndarray) -> None:
    ha, hb = dhash(a), dhash(b)
    s = float(dhash_similarity(ha, hb))
    assert 0.0 <= s <= 1.0 and s == float(dhash_similarity(hb, ha))
    assert float(dhash_similarity(ha, ha)) == 1.0
    c = heatmap_correlation(a, b)
    assert 0.0 <= c <= 1.0 and c == pytest.approx(heatmap_correlation(b, a), abs=1e-12)
    assert heatmap_correlation(a, a) == pytest.approx(1.0)


@settings(max_examples=60, deadline=None)
@given(
    patch=arrays(np.float64, (6, 6), elements=st.floats(0.0, 1.0, allow_nan=False, width=32)),
    dy=st.integers(0, 26),
    dx=st.integers(0, 26),
    ey=st.integers(0, 26),
    ex=st.integers(0, 26),
)
def test_moments_are_translation_invariant(patch: np.ndarray, dy: int, dx: int, ey: int, ex: int) -> None:
    a = np.zeros((32, 32))
    b = np.zeros((32, 32))
    a[dy : dy + 6, dx : dx + 6] = patch
    b[ey : ey + 6, ex : ex + 6] = patch
    fa, fb = moment_features_batch(np.stack([a, b]))
    np.testing.assert_allclose(fa, fb, rtol=1e-9, atol=1e-12)
    assert float(moment_similarity(fa, fb)) == pytest.approx(1.0, abs=1e-9)


def test_dhash_batch_equals_single() -> None:
    rng = np.random.default_rng(5)
    m = rng.random((4, 32, 32))
    assert np.array_equal(dhash_batch(m), np.stack([dhash(x) for x in m]))
