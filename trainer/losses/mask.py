"""Gaze positive masks built on the device with tensor ops.

The pair graph (edges between training-case indices) is turned once into a lookup structure on the
training device; each step then needs a single gather, whatever the batch or queue size:

* dense (N <= ``dense_limit``): an (N + 1, N + 1) uint8 adjacency; the mask is a row gather of the
  B batch rows followed by one ``torch.gather`` of the K columns (the fastest CPU formulation we
  measured; a second ``index_select`` along dim 1 is several times slower);
* sparse (larger N): sorted int64 keys ``a * N + b`` and ``torch.searchsorted``, O(E) memory.

Negative indices mean "no case" (e.g. MoCo queue slots not filled yet) and are never positive: they
are mapped to the extra all-zero row/column N, so no separate (B, K) validity mask is needed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


class PairLookup:
    """Symmetric positive relation over ``n`` cases; ``include_self`` makes each case its own positive.

    Args:
        edges: (E, 2) int64 tensor of case indices (either order; duplicates allowed).
        n: number of cases.
        include_self: treat (i, i) as a positive (a queue entry of the same case is a positive, as
            the paper's thresholded similarity matrix has a unit diagonal).
        dense_limit: use the dense adjacency up to this many cases.
        device: where the lookup lives (the training device).
    """

    def __init__(
        self,
        edges: torch.Tensor,
        n: int,
        *,
        include_self: bool = True,
        dense_limit: int = 16384,
        device: torch.device | str = "cpu",
    ) -> None:
        edges = edges.to(device=device, dtype=torch.long).reshape(-1, 2)
        if edges.numel() and (int(edges.min()) < 0 or int(edges.max()) >= n):
            raise ValueError(f"edge indices must be in [0, {n})")
        self.n = n
        self.num_edges = int(edges.shape[0])
        self.dense = n <= dense_limit
        if self.dense:
            adj = torch.zeros(n + 1, n + 1, dtype=torch.uint8, device=device)
            adj[edges[:, 0], edges[:, 1]] = 1
            adj[edges[:, 1], edges[:, 0]] = 1
            if include_self:
                adj[:n, :n].fill_diagonal_(1)
            self.adjacency: torch.Tensor | None = adj
            self.keys: torch.Tensor | None = None
        else:
            both = torch.cat([edges, edges.flip(1)])
            if include_self:
                diag = torch.arange(n, device=device)
                both = torch.cat([both, torch.stack([diag, diag], 1)])
            self.keys = torch.unique(both[:, 0] * (n + 1) + both[:, 1])  # sorted; base n + 1 as in lookup
            self.adjacency = None

    def lookup(self, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        """Positive mask between two index vectors.

        Args:
            rows: (B,) int64 case indices (negative = none).
            cols: (K,) int64 case indices (negative = none).

        Returns:
            (B, K) bool, ``out[i, j]`` = cases ``rows[i]`` and ``cols[j]`` are positives.
        """
        none = torch.full_like(rows[:1], self.n)
        r = torch.where(rows >= 0, rows, none)
        c = torch.where(cols >= 0, cols, none)
        if self.adjacency is not None:
            picked = self.adjacency.index_select(0, r)  # (B, N + 1)
            return torch.gather(picked, 1, c.expand(r.shape[0], -1)).view(torch.bool)
        assert self.keys is not None
        if self.keys.numel() == 0:
            return torch.zeros(r.shape[0], c.shape[0], dtype=torch.bool, device=r.device)
        # Keys are unique digits a * (n + 1) + b with a, b < n, so a sentinel n never matches.
        query = r[:, None] * (self.n + 1) + c[None, :]
        pos = torch.searchsorted(self.keys, query).clamp(max=self.keys.numel() - 1)
        return self.keys[pos] == query


def drop_positives(
    mask: torch.Tensor, p: float, generator: torch.Generator | None, keep: torch.Tensor | None = None
) -> torch.Tensor:
    """GzPT-style random dropping: each positive survives with probability ``1 - p``.

    Args:
        mask: (B, K) bool positives.
        p: drop probability in [0, 1).
        generator: device generator (seeded per step for reproducibility).
        keep: optional (B, K) bool entries never dropped (e.g. the view-of-the-same-image positive).

    Returns:
        (B, K) bool.
    """
    if p <= 0.0:
        return mask
    u = torch.rand(mask.shape, device=mask.device, generator=generator)
    out = mask & (u >= p)
    return out | (mask & keep) if keep is not None else out


def reference_positive_mask(
    similarity: np.ndarray, threshold: float, rows: Sequence[int], cols: Sequence[int]
) -> np.ndarray:
    """Paper-style mask: a Python double loop over a thresholded N x N similarity matrix.

    Kept as the slow reference for tests and ``bench.mask``; never used in training.

    Args:
        similarity: (N, N) similarities with a unit diagonal.
        threshold: pairs with similarity >= threshold are positives.
        rows: B case indices. cols: K case indices (negative = empty queue slot).

    Returns:
        (B, K) bool array.
    """
    out = np.zeros((len(rows), len(cols)), dtype=bool)
    for i, a in enumerate(rows):
        for j, b in enumerate(cols):
            if a >= 0 and b >= 0 and similarity[a, b] >= threshold:
                out[i, j] = True
    return out
