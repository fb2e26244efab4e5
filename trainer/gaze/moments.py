"""Heatmap moment features (M00, I1) and their similarity, in float64.

``M00`` is the total intensity of the (32x32, max-normalised) heatmap and ``I1 = eta20 + eta02`` is
Hu's first invariant, built from the normalised central moments
``eta_pq = mu_pq / mu00 ** (1 + (p + q) / 2)``.  Both are invariant to translating the map content
(as long as it stays on the grid); I1 is also scale invariant.  Computed as dot products with
coordinate vectors, vectorised over any number of maps (the paper's code loops over pixels in
Python and overflows on uint8 maps).

Similarity (McGIP paper): ``1 - (w1 * d(I1) + w2 * d(M00))`` with ``d(x, y) = |x - y| / max(x, y)``
and ``d(0, 0) = 0``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from numpy.typing import ArrayLike

from trainer.arrays import FloatArray

#: Weights (w1 for I1, w2 for M00) suggested per kind of image.
WEIGHTS_UNSTRUCTURED: tuple[float, float] = (0.5, 0.5)
WEIGHTS_STRUCTURED: tuple[float, float] = (0.8, 0.2)


def moment_features_batch(heatmaps: ArrayLike) -> FloatArray:
    """Moment features of a stack of heatmaps.

    Args:
        heatmaps: (N, rows, cols) non-negative maps (any numeric dtype; promoted to float64).

    Returns:
        (N, 2) float64 columns M00 and I1; I1 is 0 for an all-zero map.
    """
    hm = np.asarray(heatmaps, dtype=np.float64)
    if hm.ndim != 3:
        raise ValueError(f"heatmaps must have shape (N, rows, cols), got {hm.shape}")
    rows, cols = hm.shape[1:]
    ys = np.arange(rows, dtype=np.float64)
    xs = np.arange(cols, dtype=np.float64)
    row_sum = hm.sum(axis=2)  # (N, rows)
    col_sum = hm.sum(axis=1)  # (N, cols)
    m00 = row_sum.sum(axis=1)
    safe = np.where(m00 > 0, m00, 1.0)
    xc = col_sum @ xs / safe
    yc = row_sum @ ys / safe
    # Central second moments from the marginals: sum (x - xc)^2 I needs only the column sums.
    mu20 = ((xs[None, :] - xc[:, None]) ** 2 * col_sum).sum(axis=1)
    mu02 = ((ys[None, :] - yc[:, None]) ** 2 * row_sum).sum(axis=1)
    i1 = np.where(m00 > 0, (mu20 + mu02) / safe**2, 0.0)
    return np.stack((m00, i1), axis=1)


def moment_features(heatmap: ArrayLike) -> tuple[float, float]:
    """(M00, I1) of one heatmap.

    Args:
        heatmap: (rows, cols) non-negative map; the paper uses 32x32.

    Returns:
        (m00, i1) as Python floats (float64 precision).
    """
    hm = np.asarray(heatmap, dtype=np.float64)
    if hm.ndim != 2:
        raise ValueError(f"heatmap must be 2-D, got shape {hm.shape}")
    m00, i1 = moment_features_batch(hm[None])[0]
    return float(m00), float(i1)


def relative_difference(x: ArrayLike, y: ArrayLike) -> FloatArray:
    """``|x - y| / max(|x|, |y|)`` elementwise, 0 where both are 0; in [0, 1] for x, y >= 0."""
    xa, ya = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    den = np.maximum(np.abs(xa), np.abs(ya))
    num = np.asarray(np.abs(xa - ya))
    # In place, with no masked temporaries: this is the inner loop of all-pairs scoring.
    return np.divide(num, den, out=num, where=den > 0)


def check_weights(weights: Sequence[float]) -> tuple[float, float]:
    """Validate (w_i1, w_m00): non-negative, summing to 1."""
    if len(weights) != 2:
        raise ValueError(f"weights must be (w_i1, w_m00), got {weights!r}")
    w1, w2 = float(weights[0]), float(weights[1])
    if w1 < 0 or w2 < 0 or not np.isclose(w1 + w2, 1.0):
        raise ValueError(f"weights must be non-negative and sum to 1, got {weights!r}")
    return w1, w2


def moment_similarity(
    fa: ArrayLike, fb: ArrayLike, weights: Sequence[float] = WEIGHTS_UNSTRUCTURED
) -> FloatArray:
    """Gaze-moment similarity of feature pairs (broadcasting).

    Args:
        fa, fb: (..., 2) features (M00, I1) from :func:`moment_features`; broadcast together.
        weights: (w1, w2) for d(I1) and d(M00); non-negative, summing to 1.

    Returns:
        (...) float64 similarity in [0, 1], symmetric, 1 for identical features.
    """
    w1, w2 = check_weights(weights)
    a, b = np.asarray(fa, dtype=np.float64), np.asarray(fb, dtype=np.float64)
    d_i1 = relative_difference(a[..., 1], b[..., 1])
    d_m00 = relative_difference(a[..., 0], b[..., 0])
    # sim = 1 - (w1 d_i1 + w2 d_m00), evaluated in place (all-pairs tiles are large).
    d_i1 *= w1
    d_m00 *= w2
    d_i1 += d_m00
    np.subtract(1.0, d_i1, out=d_i1)
    return np.clip(d_i1, 0.0, 1.0, out=d_i1)


def moment_similarity_tiles(
    fa: FloatArray,
    fb: FloatArray,
    weights: Sequence[float] = WEIGHTS_UNSTRUCTURED,
    tile: int = 2048,
    *,
    upper: bool = False,
) -> Iterator[tuple[int, int, FloatArray]]:
    """All-pairs similarity in bounded-memory tiles.

    Args:
        fa: (N, 2) features; fb: (M, 2) features.
        weights: see :func:`moment_similarity`.
        tile: rows and columns per tile (memory about ``tile**2 * 40`` bytes).
        upper: only tiles on or above the diagonal (``fa`` is ``fb``; the metric is symmetric).

    Yields:
        (row_start, col_start, block) with block (<= tile, <= tile) float64 similarities.
    """
    for r in range(0, fa.shape[0], tile):
        for c in range(r if upper else 0, fb.shape[0], tile):
            yield r, c, moment_similarity(fa[r : r + tile, None, :], fb[None, c : c + tile, :], weights)
