"""TIMA: temporal clusters of fixations compared by dynamic time warping (McGIP paper).

1. Cluster a session's fixations with DBSCAN in ``(x / W, y / H, t / n)`` space (position scaled by
   the image extent, ``t`` the fixation's index in the sequence scaled by the sequence length), so a
   cluster is "one place looked at during one period".  Noise points stay as single-fixation
   clusters so that no gaze is dropped.
2. Order the clusters by mean time and describe each by the moment features (M00, I1) of its own
   duration-weighted heatmap.
3. Compare two cluster sequences with DTW, step cost ``0.7 * d(M00) + 0.3 * d(I1)`` with
   ``d(x, y) = |x - y| / max(x, y)``, and similarity ``1 - dist / len(path)``.  Among optimal paths
   the shortest is taken (ties broken on values, not on orientation), so the score is symmetric.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial.distance import cdist

from trainer.arrays import FloatArray, IntArray
from trainer.gaze.heatmap import gaussian_heatmap
from trainer.gaze.moments import moment_features_batch, relative_difference

#: Step-cost weights of the DTW: (M00, I1).
TIMA_COST_WEIGHTS: tuple[float, float] = (0.7, 0.3)


def dbscan(points: FloatArray, eps: float, min_samples: int) -> IntArray:
    """Plain DBSCAN labels (-1 = noise) for a small point set.

    Args:
        points: (n, d) coordinates.
        eps: neighbourhood radius (Euclidean).
        min_samples: neighbours (including the point) needed for a core point.

    Returns:
        (n,) int labels numbered by first appearance; -1 for noise.
    """
    n = points.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    near = cdist(points, points) <= eps
    core = near.sum(axis=1) >= min_samples
    core_links = near & core[:, None] & core[None, :]
    _, comp = connected_components(csr_matrix(core_links), directed=False)
    labels = np.full(n, -1, dtype=np.int64)
    labels[core] = comp[core]
    # Border points join the cluster of their first core neighbour (DBSCAN's order-dependent rule,
    # made deterministic by index order).
    border = ~core & (near & core[None, :]).any(axis=1)
    first_core = np.argmax(near & core[None, :], axis=1)
    labels[border] = comp[first_core[border]]
    # Renumber by first appearance.
    out = np.full(n, -1, dtype=np.int64)
    seen: dict[int, int] = {}
    for i, lab in enumerate(labels.tolist()):
        if lab >= 0:
            out[i] = seen.setdefault(lab, len(seen))
    return out


def tima_clusters(
    fixations: ArrayLike,
    image_size: tuple[float, float],
    *,
    eps: float = 0.15,
    min_samples: int = 2,
    grid: tuple[int, int] = (32, 32),
    sigma_px: float | None = None,
    pixels_per_degree: float | None = None,
) -> FloatArray:
    """Cluster features of one session, in time order.

    Args:
        fixations: (n, 3) x (px), y (px), duration.
        image_size: (width, height) in pixels.
        eps, min_samples: DBSCAN parameters in the normalised (x, y, t) space.
        grid, sigma_px, pixels_per_degree: heatmap settings (see
            :func:`trainer.gaze.heatmap.gaussian_heatmap`).

    Returns:
        (c, 2) float64 (M00, I1) per cluster; (0, 2) for no fixations.
    """
    fix = np.asarray(fixations, dtype=np.float64).reshape(-1, 3)
    n = fix.shape[0]
    if n == 0:
        return np.zeros((0, 2))
    width, height = float(image_size[0]), float(image_size[1])
    pts = np.stack((fix[:, 0] / width, fix[:, 1] / height, np.arange(n) / n), axis=1)
    labels = dbscan(pts, eps, min_samples)
    noise = labels < 0
    labels[noise] = labels.max(initial=-1) + 1 + np.arange(int(noise.sum()))
    n_clusters = int(labels.max()) + 1
    mean_t = np.bincount(labels, weights=np.arange(n), minlength=n_clusters) / np.bincount(labels)
    order = np.argsort(mean_t, kind="stable")
    maps = np.stack(
        [
            gaussian_heatmap(
                fix[labels == c],
                (width, height),
                grid,
                sigma_px=sigma_px,
                pixels_per_degree=pixels_per_degree,
            )
            for c in order
        ]
    )
    return moment_features_batch(maps)


def tima_similarity(ca: ArrayLike, cb: ArrayLike, weights: tuple[float, float] = TIMA_COST_WEIGHTS) -> float:
    """DTW similarity of two cluster sequences from :func:`tima_clusters`.

    Args:
        ca: (n, 2) and cb: (m, 2) cluster features (M00, I1).
        weights: step-cost weights for d(M00) and d(I1); summing to 1 keeps the result in [0, 1].

    Returns:
        ``1 - dist / len(path)`` in [0, 1]; 1 for identical sequences; 0 if either is empty
        (1 if both are).
    """
    a, b = np.asarray(ca, dtype=np.float64).reshape(-1, 2), np.asarray(cb, dtype=np.float64).reshape(-1, 2)
    n, m = a.shape[0], b.shape[0]
    if n == 0 or m == 0:
        return 1.0 if n == m else 0.0
    cost = weights[0] * relative_difference(a[:, None, 0], b[None, :, 0]) + weights[1] * relative_difference(
        a[:, None, 1], b[None, :, 1]
    )
    dist = np.full((n + 1, m + 1), np.inf)
    steps = np.zeros((n + 1, m + 1), dtype=np.int64)
    dist[0, 0] = 0.0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            # Lexicographic (distance, steps) minimum: independent of which sequence comes first.
            cands = (
                (dist[i - 1, j - 1], steps[i - 1, j - 1]),
                (dist[i - 1, j], steps[i - 1, j]),
                (dist[i, j - 1], steps[i, j - 1]),
            )
            d, s = min(cands)
            dist[i, j] = d + cost[i - 1, j - 1]
            steps[i, j] = s + 1
    return float(np.clip(1.0 - dist[n, m] / steps[n, m], 0.0, 1.0))
