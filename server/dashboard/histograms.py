"""Binning helpers for dashboard charts (descriptive statistics only)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

from server.dashboard.schemas import CountBucket, Histogram


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 x 10^k that is >= ``value`` (``value`` > 0), for readable bin edges."""
    if value <= 0:
        return 1.0
    exponent = math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        candidate = step * 10.0**exponent
        if candidate >= value * (1 - 1e-12):
            return candidate
    return 10.0 ** (exponent + 1)


def histogram(values: Sequence[float], lo: float, hi: float, bins: int) -> Histogram:
    """Counts of ``values`` in ``bins`` equal bins over [lo, hi] (values outside are clipped in).

    Args:
        values: (n,) numbers.
        lo, hi: range, ``hi > lo``.
        bins: number of bins.
    """
    edges = np.linspace(lo, hi, bins + 1)
    data = np.clip(np.asarray(values, dtype=np.float64), lo, hi)
    counts, _ = np.histogram(data, bins=edges)
    return Histogram(edges=[round(float(e), 10) for e in edges], counts=[int(c) for c in counts])


def error_histogram(values: Sequence[float], bins: int = 12) -> Histogram:
    """Histogram of non-negative errors from 0 to a round number at or above the largest one."""
    top = nice_ceiling(max(values)) if values else 1.0
    return histogram(values, 0.0, top, bins)


#: Above this largest value, count buckets list only the values present (no zero-filled gaps).
DENSE_BUCKETS = 100


def count_buckets(values: Iterable[int]) -> list[CountBucket]:
    """How many items have each value: every value from 0 to the largest (gaps as 0) when that is at most
    ``DENSE_BUCKETS``, else only the values present, ascending."""
    counter = Counter(values)
    if not counter:
        return []
    top = max(counter)
    present = range(0, top + 1) if top <= DENSE_BUCKETS else sorted(counter)
    return [CountBucket(value=v, items=counter.get(v, 0)) for v in present]


def quantile(values: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile (linear interpolation), or None for no values."""
    if not values:
        return None
    return float(np.quantile(np.asarray(values, dtype=np.float64), q))
