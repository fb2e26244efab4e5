"""Batched shortest-path alignment of saccade sequences (the core of MultiMatch).

For two scanpaths with ``n`` and ``m`` saccades, ``M[i, j]`` is the length of the difference of
saccade vectors ``i`` and ``j``.  MultiMatch aligns them with the cheapest monotone path from cell
``(0, 0)`` to ``(n-1, m-1)`` moving right, down or diagonally, paying ``M`` of every cell entered.
The reference builds that grid as a graph and runs Dijkstra; on a DAG the same costs come from the
dynamic programme ``D[i, j] = M[i, j] + min(D[i-1, j], D[i, j-1], D[i-1, j-1])`` with ``D[0, 0] = 0``,
evaluated here with the same float operations (``dist(pred) + weight``), so the totals are bit-equal.

Dijkstra keeps, for each cell, the predecessor with the smallest distance; only exact ties (two
predecessors whose ``dist + weight`` round to the same total) are decided by its heap order.  We
find the predecessor by argmin during backtracking and flag pairs where such a tie sits on the
chosen path; the caller re-solves those with the reference's graph search (:func:`dijkstra_path`),
so even tie-breaking matches.  With real-valued coordinates ties are rare; with integer grids they
are common and the fallback keeps results equal.

Vectorisation: many pairs are solved at once, sweeping anti-diagonals ``k = i + j``, with the pairs
on the innermost (contiguous) axis.  Cell ``(i, k - i)`` of the (n, m, P) cost array starts at flat
element ``(i * (m - 1) + k) * P``, so the skewed (diagonal, i, pair) view is a zero-copy stride
trick and each diagonal costs three numpy calls over all pairs.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numpy.lib.stride_tricks import as_strided
from numpy.typing import NDArray
from scipy.sparse.csgraph import dijkstra

from trainer.arrays import FloatArray, IntArray


def dijkstra_path(cost: FloatArray) -> IntArray:
    """Reference-equivalent path through ``cost`` (n, m) via scipy's Dijkstra on the grid graph.

    Edges are emitted in the same order as the reference (right, down, diagonal per node; last row
    only right; last column only down; a zero self-loop at the end), which fixes tie-breaking.

    Returns:
        (L, 2) int array of (i, j) cells from (0, 0) to (n-1, m-1).
    """
    n, m = cost.shape
    node = np.arange(n * m).reshape(n, m)
    ii, jj = np.divmod(node, m)
    inf_row = ii < n - 1
    inf_col = jj < m - 1
    right_ok = inf_col  # the last row only moves right
    down_ok = inf_row  # the last column only moves down
    diag_ok = inf_row & inf_col
    cand_cols = np.stack((node + 1, node + m, node + m + 1), axis=-1).reshape(-1, 3)
    ok = np.stack((right_ok, down_ok, diag_ok), axis=-1).reshape(-1, 3)
    padded = np.full((n + 1, m + 1), 0.0)
    padded[:n, :m] = cost
    w = np.stack(
        (padded[:n, 1 : m + 1], padded[1 : n + 1, :m], padded[1 : n + 1, 1 : m + 1]), axis=-1
    ).reshape(-1, 3)
    src = np.repeat(np.arange(n * m), 3).reshape(-1, 3)[ok]
    end = n * m - 1
    rows = np.append(src, end)
    cols = np.append(cand_cols[ok], end)
    weights = np.append(w[ok], 0.0)
    graph = sp.coo_matrix((weights, (rows, cols)), shape=(n * m, n * m)).tocsr()
    _, pred = dijkstra(csgraph=graph, directed=True, indices=0, return_predecessors=True)
    path = [end]
    cur = end
    while pred[cur] >= 0:
        cur = int(pred[cur])
        path.append(cur)
    flat = np.array(path[::-1], dtype=np.int64)
    return np.stack(np.divmod(flat, m), axis=1)


def align_batch(
    ax: FloatArray, ay: FloatArray, na: IntArray, bx: FloatArray, by: FloatArray, nb: IntArray
) -> tuple[IntArray, IntArray, IntArray, NDArray[np.bool_]]:
    """Align P pairs of saccade sequences at once.

    Args:
        ax, ay: (P, n) saccade components of the first scanpaths, padded past ``na``.
        na: (P,) saccade counts, each >= 1.
        bx, by: (P, m) second scanpaths, padded past ``nb``.
        nb: (P,) saccade counts, each >= 1.

    Returns:
        pi, pj: (P, L) path cells, L = n + m - 1, listed from the end cell backwards; entries past
            a pair's path length are -1.
        length: (P,) path lengths.
        tie: (P,) True where an exact cost tie lies on the chosen path (resolve with
            :func:`dijkstra_path`).
    """
    p, n = ax.shape
    m = bx.shape[1]
    k_total = n + m - 1
    # Padded cells (i >= na or j >= nb) never precede a cell of the pair's own grid, so they need
    # no masking: every dependency points up or left.
    # Pairs are the innermost (contiguous) axis so that each diagonal step is one dense block.
    # Contiguous operands make the ufunc outputs C-ordered, which the stride trick below relies on.
    ax_t, ay_t = np.ascontiguousarray(ax.T), np.ascontiguousarray(ay.T)
    bx_t, by_t = np.ascontiguousarray(bx.T), np.ascontiguousarray(by.T)
    dx = ax_t[:, None, :] - bx_t[None, :, :]
    dy = ay_t[:, None, :] - by_t[None, :, :]
    np.square(dx, out=dx)
    np.square(dy, out=dy)
    dx += dy
    costs = np.sqrt(dx, out=dx)  # (n, m, P)
    if not costs.flags.c_contiguous:
        costs = np.ascontiguousarray(costs)
    item = costs.itemsize
    skew = as_strided(
        costs, shape=(k_total, n, p), strides=(p * item, (m - 1) * p * item, item), writeable=False
    )
    # dist[k + 1, i + 1] = D[i, k - i].  Only the band [lo, hi + 1] of each row is ever read (here
    # and in the backtrack); its two edge cells are +inf sentinels, so the rest stays uninitialised
    # instead of filling the whole table.
    dist = np.empty((k_total + 1, n + 1, p))
    dist[:2] = np.inf
    dist[1, 1] = 0.0
    tmp = np.empty((n, p))
    for k in range(1, k_total):
        lo, hi = max(0, k - m + 1), min(k, n - 1) + 1
        np.minimum(dist[k, lo:hi], dist[k - 1, lo:hi], out=tmp[lo:hi])  # up, diagonal
        np.minimum(tmp[lo:hi], dist[k, lo + 1 : hi + 1], out=tmp[lo:hi])  # left
        np.add(tmp[lo:hi], skew[k, lo:hi], out=dist[k + 1, lo + 1 : hi + 1])
        dist[k + 1, lo] = np.inf
        if hi + 1 <= n:
            dist[k + 1, hi + 1] = np.inf
    return _backtrack(dist, costs, na, nb)


def _backtrack(
    dist: FloatArray, costs: FloatArray, na: IntArray, nb: IntArray
) -> tuple[IntArray, IntArray, IntArray, NDArray[np.bool_]]:
    """Follow the cheapest predecessors from each pair's end cell back to (0, 0).

    A tie is what Dijkstra sees as one: two predecessors whose ``dist + cost`` round to the same
    total, even if their distances differ in the last bit.
    """
    p = dist.shape[2]
    if p <= 2:
        return _backtrack_small(dist, costs, na, nb)
    n1 = dist.shape[1]
    flat_d = dist.reshape(-1)
    flat_c = costs.reshape(-1)
    m = costs.shape[1]
    rows = np.arange(p)
    i = na.astype(np.int64) - 1
    j = nb.astype(np.int64) - 1
    steps = int((i + j).max()) + 1
    pi = np.empty((p, steps), dtype=np.int64)
    pj = np.empty((p, steps), dtype=np.int64)
    tie = np.zeros(p, dtype=bool)
    # Pairs that reach (0, 0) stay there (no move), so all pairs step together without masks.
    for step in range(steps):
        pi[:, step] = i
        pj[:, step] = j
        if step == steps - 1:
            break
        moving = (i > 0) | (j > 0)
        at = ((i + j) * n1 + i) * p + rows  # flat index of dist[k, i] with k = i + j
        up = flat_d[at]  # D[i-1, j]
        left = flat_d[at + p]  # D[i, j-1]
        diag = flat_d[np.maximum(at - n1 * p, 0)]  # D[i-1, j-1]
        best = np.minimum(np.minimum(up, left), diag)
        c = flat_c[(i * m + j) * p + rows]
        total = best + c
        n_best = (up + c == total).astype(np.int8) + (left + c == total) + (diag + c == total)
        tie |= moving & (n_best > 1)
        go_diag = diag == best
        go_up = ~go_diag & (up == best)
        i = i - (moving & (go_diag | go_up))
        j = j - (moving & ~go_up)
    done = (pi == 0) & (pj == 0)
    length = np.argmax(done, axis=1) + 1
    pi[np.arange(steps)[None, :] >= length[:, None]] = -1
    pj[np.arange(steps)[None, :] >= length[:, None]] = -1
    return pi, pj, length.astype(np.int64), tie


def _backtrack_small(
    dist: FloatArray, costs: FloatArray, na: IntArray, nb: IntArray
) -> tuple[IntArray, IntArray, IntArray, NDArray[np.bool_]]:
    """Same as the vectorised backtrack, on Python floats: faster for one or two pairs."""
    p = dist.shape[2]
    k_total = dist.shape[0] - 1
    pi = np.full((p, k_total), -1, dtype=np.int64)
    pj = np.full((p, k_total), -1, dtype=np.int64)
    length = np.zeros(p, dtype=np.int64)
    tie = np.zeros(p, dtype=bool)
    for r in range(p):
        d = dist[:, :, r].tolist()
        c = costs[:, :, r].tolist()
        i, j = int(na[r]) - 1, int(nb[r]) - 1
        cells = [(i, j)]
        while i > 0 or j > 0:
            k = i + j
            up, left, diag = d[k][i], d[k][i + 1], d[max(k - 1, 0)][i]
            best = min(up, left, diag)
            cc = c[i][j]
            total = best + cc
            if (up + cc == total) + (left + cc == total) + (diag + cc == total) > 1:
                tie[r] = True
            if diag == best:
                i, j = i - 1, j - 1
            elif up == best:
                i -= 1
            else:
                j -= 1
            cells.append((i, j))
        length[r] = len(cells)
        arr = np.array(cells, dtype=np.int64)
        pi[r, : len(cells)] = arr[:, 0]
        pj[r, : len(cells)] = arr[:, 1]
    return pi, pj, length, tie
