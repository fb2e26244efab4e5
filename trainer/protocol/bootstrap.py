"""Case-level stratified bootstrap: percentile CIs and the paired difference between two models.

Resamples are drawn once per evaluation and shared by every condition, so the difference between
two models is computed on the same resampled cases (a paired bootstrap): their case-to-case
correlation cancels instead of widening the interval.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["DEFAULT_RESAMPLES", "Interval", "interval", "paired_difference", "stratified_indices"]

#: Bootstrap resamples unless configured otherwise (at least 1,000).
DEFAULT_RESAMPLES = 2000
ALPHA = 0.05


def stratified_indices(y: NDArray[np.int64], resamples: int, seed: int = 0) -> NDArray[np.int64]:
    """(B, n) case indices: each row resamples every class with replacement to its own size.

    Stratifying keeps every class's count fixed, so per-class metrics exist on every resample.
    """
    if resamples < 1:
        raise ValueError(f"resamples must be positive, got {resamples}")
    rng = np.random.default_rng(seed)
    n = y.shape[0]
    out = np.empty((resamples, n), dtype=np.int64)
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        out[:, members] = members[rng.integers(0, members.shape[0], size=(resamples, members.shape[0]))]
    return out


@dataclass(frozen=True)
class Interval:
    """A point estimate with its 95% percentile interval (and a two-sided p-value for differences)."""

    value: float
    ci_low: float
    ci_high: float
    p_value: float | None = None

    def to_dict(self) -> dict[str, float | None]:
        out: dict[str, float | None] = {
            "value": _clean(self.value),
            "ci_low": _clean(self.ci_low),
            "ci_high": _clean(self.ci_high),
        }
        if self.p_value is not None:
            out["p_value"] = _clean(self.p_value)
        return out


def _clean(x: float) -> float | None:
    return None if not np.isfinite(x) else float(x)


def interval(observed: float, samples: NDArray[np.float64]) -> Interval:
    """Percentile interval of bootstrap ``samples`` (NaN rows ignored) around ``observed``."""
    finite = samples[np.isfinite(samples)]
    if finite.size == 0:
        return Interval(observed, float("nan"), float("nan"))
    lo, hi = np.percentile(finite, [100 * ALPHA / 2, 100 * (1 - ALPHA / 2)])
    return Interval(float(observed), float(lo), float(hi))


def paired_difference(
    observed: float, samples_a: NDArray[np.float64], samples_b: NDArray[np.float64]
) -> Interval:
    """A - B on shared resamples: percentile CI and a two-sided bootstrap p-value for "no difference".

    The p-value is twice the smaller tail share of resampled differences at or beyond 0, with the
    usual +1 correction, so it is never exactly 0 and is 1 when the two models agree on every case.
    """
    d = samples_a - samples_b
    d = d[np.isfinite(d)]
    base = interval(observed, d)
    if d.size == 0:
        return Interval(observed, base.ci_low, base.ci_high, float("nan"))
    below = (np.count_nonzero(d <= 0) + 1) / (d.size + 1)
    above = (np.count_nonzero(d >= 0) + 1) / (d.size + 1)
    return Interval(base.value, base.ci_low, base.ci_high, float(min(1.0, 2 * min(below, above))))
