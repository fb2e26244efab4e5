"""Heatmap correlation, for structured images where the same anatomy sits at the same place.

Pearson correlation ``r`` of the two maps' cells mapped to ``(1 + r) / 2`` so that the score is in
[0, 1]: 1 for maps equal up to a positive scale and offset, 0.5 for unrelated maps, 0 for inverted
ones.  A constant map has no correlation; two constant maps score 1, a constant and a varying one
0.5.  Unlike moments, this metric is deliberately not translation invariant.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from trainer.arrays import FloatArray


def centred_unit(heatmaps: ArrayLike) -> tuple[FloatArray, NDArray[np.bool_]]:
    """Flatten maps to zero-mean unit-norm vectors (precompute once per session).

    Args:
        heatmaps: (N, rows, cols) maps.

    Returns:
        (N, rows*cols) vectors (zeros for constant maps) and (N,) flags of constant maps.
    """
    hm = np.asarray(heatmaps, dtype=np.float64)
    v = hm.reshape(hm.shape[0], -1)
    v = v - v.mean(axis=1, keepdims=True)
    norm = np.sqrt((v * v).sum(axis=1))
    flat = norm <= 1e-12 * np.maximum(1.0, np.abs(hm.reshape(hm.shape[0], -1)).max(axis=1, initial=0.0))
    return np.where(flat[:, None], 0.0, v / np.where(flat, 1.0, norm)[:, None]), flat


def correlation_from_unit(
    ua: FloatArray, flat_a: NDArray[np.bool_], ub: FloatArray, flat_b: NDArray[np.bool_]
) -> FloatArray:
    """(N, M) similarity from :func:`centred_unit` outputs (a matrix product)."""
    r = np.clip(ua @ ub.T, -1.0, 1.0)
    sim = (1.0 + r) / 2.0
    both = flat_a[:, None] & flat_b[None, :]
    one = flat_a[:, None] ^ flat_b[None, :]
    return np.where(both, 1.0, np.where(one, 0.5, sim))


def heatmap_correlation(a: ArrayLike, b: ArrayLike) -> float:
    """Correlation similarity of two (rows, cols) maps of the same shape, in [0, 1]."""
    ha, hb = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if ha.shape != hb.shape or ha.ndim != 2:
        raise ValueError(f"maps must be 2-D with equal shapes, got {ha.shape} and {hb.shape}")
    ua, fa = centred_unit(ha[None])
    ub, fb = centred_unit(hb[None])
    return float(correlation_from_unit(ua, fa, ub, fb)[0, 0])
