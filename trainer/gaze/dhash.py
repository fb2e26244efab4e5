"""Difference hash (dHash) of heatmaps with cosine similarity.

The map is area-averaged down to 8 rows x 9 columns; bit ``(r, c)`` says whether cell ``(r, c + 1)``
is brighter than ``(r, c)``, giving 64 bits that describe where attention rises and falls along each
row.  Similarity is the cosine of the two 0/1 bit vectors (1 when both are all-zero, which only
happens for identical flat maps; 0 when exactly one is).  Resizing is two small averaging matrices,
so a stack of maps hashes in one ``einsum``.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from numpy.typing import ArrayLike

from trainer.arrays import BoolArray, FloatArray

HASH_ROWS, HASH_COLS = 8, 9


def _area_matrix(src: int, dst: int) -> FloatArray:
    """(dst, src) matrix averaging source cells by their overlap with each destination cell."""
    edges_src = np.arange(src + 1) / src
    edges_dst = np.arange(dst + 1) / dst
    lo = np.maximum(edges_dst[:-1, None], edges_src[None, :-1])
    hi = np.minimum(edges_dst[1:, None], edges_src[None, 1:])
    overlap = np.clip(hi - lo, 0.0, None)
    return overlap / overlap.sum(axis=1, keepdims=True)


def dhash_batch(heatmaps: ArrayLike) -> BoolArray:
    """dHash bits of a stack of maps.

    Args:
        heatmaps: (N, rows, cols) maps.

    Returns:
        (N, 64) bool bits, row-major over the 8x8 comparisons.
    """
    hm = np.asarray(heatmaps, dtype=np.float64)
    if hm.ndim != 3:
        raise ValueError(f"heatmaps must have shape (N, rows, cols), got {hm.shape}")
    ry = _area_matrix(hm.shape[1], HASH_ROWS)
    rx = _area_matrix(hm.shape[2], HASH_COLS)
    small = np.einsum("ri,nij,cj->nrc", ry, hm, rx)
    return (small[:, :, 1:] > small[:, :, :-1]).reshape(hm.shape[0], -1)


def dhash(heatmap: ArrayLike) -> BoolArray:
    """(64,) dHash bits of one (rows, cols) map."""
    hm = np.asarray(heatmap, dtype=np.float64)
    if hm.ndim != 2:
        raise ValueError(f"heatmap must be 2-D, got shape {hm.shape}")
    return dhash_batch(hm[None])[0]


def _cosine(dot: FloatArray, na: FloatArray, nb: FloatArray) -> FloatArray:
    den = np.sqrt(na * nb)
    with np.errstate(invalid="ignore", divide="ignore"):
        sim = np.where(den > 0, dot / np.where(den > 0, den, 1.0), np.where((na == 0) & (nb == 0), 1.0, 0.0))
    return np.asarray(np.clip(sim, 0.0, 1.0))


def dhash_similarity(ha: ArrayLike, hb: ArrayLike) -> FloatArray:
    """Cosine similarity of hash bit vectors (broadcasting over leading axes).

    Args:
        ha, hb: (..., 64) bool bits.

    Returns:
        (...) float64 in [0, 1]; symmetric; 1 for identical hashes.
    """
    a = np.asarray(ha, dtype=np.float64)
    b = np.asarray(hb, dtype=np.float64)
    dot = (a * b).sum(axis=-1)
    na, nb = a.sum(axis=-1), b.sum(axis=-1)  # bits are 0/1, so |v|^2 = popcount
    return _cosine(dot, na, nb)


def dhash_similarity_tiles(
    ha: BoolArray, hb: BoolArray, tile: int = 4096
) -> Iterator[tuple[int, int, FloatArray]]:
    """All-pairs cosine similarity in tiles (matrix products of float32 0/1 vectors: exact counts).

    Args:
        ha: (N, 64) bits; hb: (M, 64) bits.
        tile: rows and columns per tile.

    Yields:
        (row_start, col_start, block) float64 similarities.
    """
    fa, fb = ha.astype(np.float32), hb.astype(np.float32)
    pa, pb = fa.sum(axis=1).astype(np.float64), fb.sum(axis=1).astype(np.float64)
    for r in range(0, fa.shape[0], tile):
        for c in range(0, fb.shape[0], tile):
            dot = (fa[r : r + tile] @ fb[c : c + tile].T).astype(np.float64)
            yield r, c, _cosine(dot, pa[r : r + tile, None], pb[None, c : c + tile])
