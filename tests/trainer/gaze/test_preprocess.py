"""Gap filling, resampling and smoothing of raw gaze samples."""

from __future__ import annotations

import numpy as np
import pytest

from trainer.gaze.preprocess import as_samples, interpolate_gaps, resample, smooth, valid_runs


def _line(n: int = 50, dt: float = 10.0) -> np.ndarray:
    t = np.arange(n) * dt
    return np.column_stack((t, t * 0.5, 100.0 - t * 0.2, np.ones(n)))


def test_as_samples_flags_nan_and_rejects_bad_input() -> None:
    s = _line()
    s[3, 1] = np.nan
    out = as_samples(s)
    assert out[3, 3] == 0.0 and out[4, 3] == 1.0
    with pytest.raises(ValueError, match="shape"):
        as_samples(np.zeros((5, 3)))
    s2 = _line()
    s2[5, 0] = 0.0
    with pytest.raises(ValueError, match="non-decreasing"):
        as_samples(s2)


def test_short_gaps_are_interpolated_long_gaps_kept() -> None:
    s = _line()
    s[10:13, 3] = 0.0  # 40 ms between valid neighbours
    s[20:35, 1:3] = np.nan  # 160 ms
    out = interpolate_gaps(s, max_gap_ms=75.0)
    assert out[10:13, 3].tolist() == [1.0, 1.0, 1.0]
    np.testing.assert_allclose(out[10:13, 1], _line()[10:13, 1])
    assert (out[20:35, 3] == 0).all()
    assert valid_runs(out[:, 3] > 0).tolist() == [[0, 20], [35, 50]]


def test_resample_to_uniform_rate() -> None:
    s = _line(n=101, dt=10.0)  # 100 Hz, 1 s
    rng = np.random.default_rng(0)
    s[1:-1, 0] += rng.uniform(-3, 3, 99)  # jitter, order kept
    s[:, 1] = s[:, 0] * 0.5
    out = resample(s, rate_hz=250.0)
    assert np.allclose(np.diff(out[:, 0]), 4.0)
    assert out.shape[0] == 251
    np.testing.assert_allclose(out[:, 1], out[:, 0] * 0.5, atol=1e-9)
    assert (out[:, 3] == 1).all()
    s[40:60, 3] = 0.0  # a 200 ms dropout stays invalid after resampling
    out = resample(s, rate_hz=250.0)
    inside = (out[:, 0] > 400) & (out[:, 0] < 590)
    assert (out[inside, 3] == 0).all() and np.isnan(out[inside, 1]).all()
    with pytest.raises(ValueError, match="rate_hz"):
        resample(s, 0.0)


def test_smoothing_removes_spikes_and_keeps_steps() -> None:
    s = _line()
    s[:, 1] = np.where(s[:, 0] < 250, 10.0, 200.0)  # a saccade-like step
    s[10, 1] = 500.0  # isolated spike
    out = smooth(s, window=3)
    assert out[10, 1] == 10.0
    assert out[24, 1] == 10.0 and out[25, 1] == 200.0
    with pytest.raises(ValueError, match="odd"):
        smooth(s, window=4)
