"""Device-side positive masks equal the paper-style reference loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from trainer.data.pairs import pair_edges, shuffle_edges
from trainer.losses.mask import PairLookup, drop_positives, reference_positive_mask
from trainer.losses.positives import GazePositives


def _similarity(n: int, seed: int, density: float) -> tuple[np.ndarray, torch.Tensor]:
    """Symmetric similarity with unit diagonal and the edges that pass threshold 0.9."""
    rng = np.random.default_rng(seed)
    s = rng.random((n, n)) * 0.9
    hits = rng.random((n, n)) < density
    s[hits] = 0.95
    s = np.maximum(s, s.T)
    np.fill_diagonal(s, 1.0)
    a, b = np.nonzero(np.triu(s >= 0.9, k=1))
    return s, torch.from_numpy(np.stack([a, b], 1)).long()


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(2, 60),
    b=st.integers(1, 12),
    k=st.integers(1, 40),
    seed=st.integers(0, 10_000),
    dense=st.booleans(),
)
def test_lookup_equals_reference_loop(n: int, b: int, k: int, seed: int, dense: bool) -> None:
    sim, edges = _similarity(n, seed, 0.1)
    rng = np.random.default_rng(seed + 1)
    rows = rng.integers(0, n, b)
    cols = rng.integers(-1, n, k)  # -1: empty queue slot
    lookup = PairLookup(edges, n, dense_limit=n if dense else 0)
    assert lookup.dense is dense
    got = lookup.lookup(torch.from_numpy(rows), torch.from_numpy(cols)).numpy()
    np.testing.assert_array_equal(got, reference_positive_mask(sim, 0.9, rows.tolist(), cols.tolist()))


def test_batch_32_queue_4096_equals_reference() -> None:
    n = 2000
    sim, edges = _similarity(n, 3, 0.01)
    rng = np.random.default_rng(4)
    rows, cols = rng.integers(0, n, 32), rng.integers(-1, n, 4096)
    ref = reference_positive_mask(sim, 0.9, rows.tolist(), cols.tolist())
    for limit in (n, 0):
        got = PairLookup(edges, n, dense_limit=limit).lookup(torch.from_numpy(rows), torch.from_numpy(cols))
        np.testing.assert_array_equal(got.numpy(), ref)
    assert ref.sum() > 32  # not only self-positives


def test_without_self_and_with_no_edges() -> None:
    edges = torch.tensor([[0, 1]])
    lookup = PairLookup(edges, 3, include_self=False)
    m = lookup.lookup(torch.tensor([0, 1, 2]), torch.tensor([0, 1, 2]))
    assert m.tolist() == [[False, True, False], [True, False, False], [False, False, False]]
    empty = PairLookup(torch.zeros(0, 2, dtype=torch.long), 4, include_self=False, dense_limit=0)
    assert not empty.lookup(torch.tensor([0, 1]), torch.tensor([0, 1, 2])).any()


def test_lookup_rejects_out_of_range_edges() -> None:
    with pytest.raises(ValueError, match="edge indices"):
        PairLookup(torch.tensor([[0, 5]]), 3)


def test_drop_positives_rate_and_keep() -> None:
    mask = torch.ones(200, 200, dtype=torch.bool)
    keep = torch.eye(200, dtype=torch.bool)
    gen = torch.Generator().manual_seed(0)
    out = drop_positives(mask, 0.3, gen, keep)
    assert out[keep].all()
    frac = out[~keep].float().mean().item()
    assert 0.67 < frac < 0.73
    assert torch.equal(drop_positives(mask, 0.0, gen), mask)


def test_gaze_positives_dropping_is_reproducible_per_step() -> None:
    _, edges = _similarity(50, 0, 0.3)
    pos = GazePositives(PairLookup(edges, 50), drop_prob=0.5, seed=1)
    rows, cols = torch.arange(10), torch.arange(50)
    pos.set_step(7, 0)
    a = pos.mask(rows, cols)
    pos.set_step(8, 0)
    b = pos.mask(rows, cols)
    pos.set_step(7, 0)
    assert torch.equal(a, pos.mask(rows, cols))
    assert not torch.equal(a, b)


def test_baseline_positives_are_only_keep() -> None:
    base = GazePositives(None)
    keep = torch.eye(3, dtype=torch.bool)
    assert torch.equal(base.mask(torch.arange(3), torch.arange(3), keep), keep)
    assert not base.mask(torch.arange(3), torch.arange(5)).any()


def test_pair_edges_and_shuffle() -> None:
    index = {"a": 0, "b": 1, "c": 2}
    pairs = [("a", "b", 0.95), ("a", "c", 0.5), ("b", "x", 0.99), ("c", "c", 1.0)]
    assert pair_edges(pairs, index).tolist() == [[0, 1], [0, 2]]
    assert pair_edges(pairs, index, min_score=0.9).tolist() == [[0, 1]]
    edges = torch.randint(0, 100, (500, 2))
    shuffled = shuffle_edges(edges, 100, seed=0)
    assert shuffled.shape == edges.shape and not torch.equal(shuffled, edges)
    # Same degree multiset: a relabelling, not a rewiring.
    assert sorted(torch.bincount(edges.flatten(), minlength=100).tolist()) == sorted(
        torch.bincount(shuffled.flatten(), minlength=100).tolist()
    )
