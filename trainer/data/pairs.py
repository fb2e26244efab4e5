"""Snapshot pair graph -> edge tensor over training-case indices (and the shuffled-gaze control)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch


def pair_edges(
    pairs: Sequence[tuple[str, str, float]], index: Mapping[str, int], *, min_score: float | None = None
) -> torch.Tensor:
    """Edges between cases present in ``index`` (pairs touching other cases are skipped).

    Args:
        pairs: ``(case_id_a, case_id_b, score)`` from the snapshot.
        index: case id -> training-case index.
        min_score: keep only pairs with ``score >= min_score``.

    Returns:
        (E, 2) int64 tensor; self-pairs are removed (self-positives are added by ``PairLookup``).
    """
    rows = [
        (index[a], index[b])
        for a, b, s in pairs
        if a in index and b in index and a != b and (min_score is None or s >= min_score)
    ]
    if not rows:
        return torch.zeros(0, 2, dtype=torch.long)
    return torch.tensor(rows, dtype=torch.long)


def shuffle_edges(edges: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """Control: relabel cases by a seeded random permutation.

    Keeps the graph's size and degree structure but detaches pairs from image content, so any gain
    it gives cannot come from what the readers looked at.

    Args:
        edges: (E, 2) int64. n: number of cases. seed: permutation seed.

    Returns:
        (E, 2) int64.
    """
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed + 7777))
    return perm[edges] if edges.numel() else edges
