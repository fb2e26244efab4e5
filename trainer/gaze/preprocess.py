"""Raw gaze pre-processing: gap filling, resampling to a uniform rate, smoothing.

Samples are float arrays of shape (m, 4): ``t_ms, x, y, valid`` with ``valid`` 1.0 for a tracked
sample and 0.0 otherwise (blinks, dropouts; ``x``/``y`` may be NaN there).  Every function returns a
new array in the same layout and never reorders samples.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import ndimage

from trainer.arrays import FloatArray

__all__ = ["as_samples", "interpolate_gaps", "resample", "smooth", "valid_runs"]


def as_samples(samples: ArrayLike) -> FloatArray:
    """Validate and copy samples to a float64 (m, 4) array; NaN coordinates become invalid.

    Raises:
        ValueError: on a wrong shape or timestamps that go backwards.
    """
    s = np.array(samples, dtype=np.float64, copy=True)
    if s.ndim != 2 or s.shape[1] != 4:
        raise ValueError(f"samples must have shape (m, 4) [t_ms, x, y, valid], got {s.shape}")
    if s.shape[0] > 1 and (np.diff(s[:, 0]) < 0).any():
        raise ValueError("sample timestamps must be non-decreasing")
    bad = ~np.isfinite(s[:, 1]) | ~np.isfinite(s[:, 2]) | (s[:, 3] <= 0)
    s[:, 3] = np.where(bad, 0.0, 1.0)
    return s


def valid_runs(valid: NDArray[np.bool_]) -> NDArray[np.int64]:
    """(r, 2) half-open [start, stop) index ranges of consecutive True entries."""
    v = np.concatenate(([False], np.asarray(valid, dtype=bool), [False]))
    edges = np.flatnonzero(v[1:] != v[:-1])
    return edges.reshape(-1, 2).astype(np.int64)


def interpolate_gaps(samples: ArrayLike, max_gap_ms: float = 75.0) -> FloatArray:
    """Fill short runs of invalid samples by linear interpolation between their valid neighbours.

    A gap counts as short when the time between the last valid sample before it and the first
    valid sample after it is at most ``max_gap_ms`` (75 ms keeps blinks, ~100-300 ms, as gaps).

    Args:
        samples: (m, 4) t_ms, x, y, valid.
        max_gap_ms: Longest gap to bridge, milliseconds.

    Returns:
        (m, 4) samples with bridged gaps marked valid.
    """
    s = as_samples(samples)
    ok = s[:, 3] > 0
    if ok.sum() < 2:
        return s
    idx = np.arange(s.shape[0])
    good = np.flatnonzero(ok)
    # Previous / next valid sample of every sample (only used where they exist).
    prev = np.maximum.accumulate(np.where(ok, idx, -1))
    nxt = np.minimum.accumulate(np.where(ok, idx, s.shape[0])[::-1])[::-1]
    inner = ~ok & (prev >= 0) & (nxt < s.shape[0])
    span = np.where(inner, s[np.minimum(nxt, s.shape[0] - 1), 0] - s[np.maximum(prev, 0), 0], np.inf)
    fill = inner & (span <= max_gap_ms)
    if fill.any():
        t = s[fill, 0]
        s[fill, 1] = np.interp(t, s[good, 0], s[good, 1])
        s[fill, 2] = np.interp(t, s[good, 0], s[good, 2])
        s[fill, 3] = 1.0
    return s


def resample(samples: ArrayLike, rate_hz: float, max_gap_ms: float = 75.0) -> FloatArray:
    """Resample to a uniform rate by linear interpolation between valid samples.

    A new sample is valid when the valid samples on either side of it are at most ``max_gap_ms``
    apart (so dropouts stay dropouts instead of becoming straight lines).

    Args:
        samples: (m, 4) t_ms, x, y, valid (any, possibly jittered, rate).
        rate_hz: Output rate, Hz (> 0).
        max_gap_ms: Longest interval between valid input samples to interpolate across.

    Returns:
        (k, 4) samples at ``t0 + i * 1000 / rate_hz`` covering the input time span.
    """
    if rate_hz <= 0:
        raise ValueError(f"rate_hz must be positive, got {rate_hz}")
    s = as_samples(samples)
    if s.shape[0] == 0:
        return s
    t0, t1 = s[0, 0], s[-1, 0]
    step = 1000.0 / rate_hz
    t = t0 + step * np.arange(int(np.floor((t1 - t0) / step + 1e-9)) + 1)
    out = np.zeros((t.shape[0], 4))
    out[:, 0] = t
    good = np.flatnonzero(s[:, 3] > 0)
    if good.size == 0:
        return out
    tg = s[good, 0]
    out[:, 1] = np.interp(t, tg, s[good, 1])
    out[:, 2] = np.interp(t, tg, s[good, 2])
    right = np.clip(np.searchsorted(tg, t, side="left"), 0, tg.size - 1)
    left = np.clip(np.searchsorted(tg, t, side="right") - 1, 0, tg.size - 1)
    inside = (t >= tg[0]) & (t <= tg[-1]) & (tg[right] - tg[left] <= max_gap_ms)
    out[:, 3] = inside.astype(np.float64)
    out[~inside, 1:3] = np.nan
    return out


def smooth(samples: ArrayLike, window: int = 3) -> FloatArray:
    """Median-filter x and y within each run of valid samples.

    A median keeps saccade edges sharp while removing the isolated spikes typical of webcam
    trackers.  Runs shorter than the window are left as they are.

    Args:
        samples: (m, 4) t_ms, x, y, valid.
        window: Odd filter length in samples (>= 1; 1 returns a copy).

    Returns:
        (m, 4) smoothed samples.
    """
    if window < 1 or window % 2 == 0:
        raise ValueError(f"window must be a positive odd number, got {window}")
    s = as_samples(samples)
    if window == 1:
        return s
    for a, b in valid_runs(s[:, 3] > 0):
        if b - a >= window:
            s[a:b, 1] = ndimage.median_filter(s[a:b, 1], size=window, mode="nearest")
            s[a:b, 2] = ndimage.median_filter(s[a:b, 2], size=window, mode="nearest")
    return s
