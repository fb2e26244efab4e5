"""Pair mining: incremental equals full recompute, aggregation rules, graph, features round trip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from trainer.gaze import (
    MetricConfig,
    MiningConfig,
    PairMiner,
    SessionFeatures,
    compute_session_features,
    tima_clusters,
    tima_similarity,
)
from trainer.gaze.tima import dbscan

DATA = Path("/work/shared/data/studyforrest-fixvectors")


def random_sessions(n: int, seed: int = 0) -> list[SessionFeatures]:
    rng = np.random.default_rng(seed)
    out = []
    for s in range(n):
        k = int(rng.integers(4, 25))
        fix = np.c_[rng.uniform(0, 512, (k, 2)), rng.uniform(0.1, 0.6, k)]
        out.append(compute_session_features(s, int(rng.integers(0, 15)), s % 3, fix, (512, 512)))
    return out


@pytest.mark.parametrize(
    "metric",
    [
        MetricConfig("moments"),
        MetricConfig("dhash"),
        MetricConfig("correlation"),
        MetricConfig("tima"),
        MetricConfig("multimatch"),
        MetricConfig("multimatch", prefilter_k=4),
    ],
    ids=["moments", "dhash", "correlation", "tima", "multimatch", "multimatch-prefilter"],
)
@pytest.mark.parametrize("aggregate", ["mean", "max"])
def test_incremental_equals_full_recompute(metric: MetricConfig, aggregate: str) -> None:
    feats = random_sessions(45)
    cfg = MiningConfig(metric=metric, aggregate=aggregate, threshold=0.6, tile=8)  # type: ignore[arg-type]
    inc = PairMiner(cfg)
    scored = [inc.add_session(f) for f in feats]
    full = PairMiner.from_features(feats, cfg)
    g1, g2 = inc.pair_graph(), full.pair_graph()
    assert g1.score.size > 0
    assert list(g1.case_a) == list(g2.case_a) and list(g1.case_b) == list(g2.case_b)
    assert np.array_equal(g1.score, g2.score)
    assert np.array_equal(g1.positive, g2.positive)
    # O(N): each new session is scored only against the same reader's earlier sessions.
    assert scored[-1] <= sum(1 for f in feats[:-1] if f.reader_id == feats[-1].reader_id)


def test_scores_only_within_reader_and_aggregates_over_readers() -> None:
    hot = np.array([[100.0, 100.0, 0.5], [120.0, 110.0, 0.4], [300.0, 300.0, 0.3]])
    cold = np.array([[400.0, 50.0, 0.1], [60.0, 450.0, 1.5]])
    sess = [
        compute_session_features(1, "A", "r1", hot, (512, 512)),
        compute_session_features(2, "B", "r1", hot, (512, 512)),
        compute_session_features(3, "A", "r2", hot, (512, 512)),
        compute_session_features(4, "B", "r2", cold, (512, 512)),
        compute_session_features(5, "C", "r3", hot, (512, 512)),  # r3 read only C: no pair
    ]
    for agg, expect_one in (("max", True), ("mean", False)):
        miner = PairMiner(MiningConfig(aggregate=agg, threshold=0.99))  # type: ignore[arg-type]
        for f in sess:
            miner.add_session(f)
        g = miner.pair_graph()
        assert list(zip(g.case_a, g.case_b, strict=True)) == [("A", "B")]
        assert g.n_readers.tolist() == [2]
        assert (g.score[0] == 1.0) == expect_one
        stats = g.stats()
        assert stats["pairs_scored"] == 1
        assert stats["positives_per_case"]["C"] == 0
        assert sum(stats["histogram"]) == 1


def test_top_k_selects_best_partners_per_case() -> None:
    feats = random_sessions(40, seed=4)
    miner = PairMiner.from_features(feats, MiningConfig(top_k=1))
    g = miner.pair_graph()
    pos = g.positives()
    partners: dict[object, list[float]] = {}
    for a, b, s in zip(g.case_a.tolist(), g.case_b.tolist(), g.score.tolist(), strict=True):
        partners.setdefault(a, []).append(s)
        partners.setdefault(b, []).append(s)
    for case, scores in partners.items():
        mine = [s for a, b, s in pos if case in (a, b)]
        assert max(scores) in mine  # each case's best partner is a positive
    assert len(pos) <= len(partners)


def test_features_round_trip_bytes_and_dict() -> None:
    f = random_sessions(1)[0]
    for g in (SessionFeatures.from_bytes(f.to_bytes()), SessionFeatures.from_dict(f.to_dict())):
        assert (g.session_id, g.case_id, g.reader_id, g.image_size) == (
            f.session_id,
            f.case_id,
            f.reader_id,
            f.image_size,
        )
        for name in ("fixations", "heatmap", "moments", "dhash", "tima", "descriptor"):
            assert np.array_equal(getattr(g, name), getattr(f, name)), name
    with pytest.raises(ValueError, match="version"):
        SessionFeatures.from_dict({**f.to_dict(), "version": 99})


def test_dbscan_finds_separated_groups_and_noise() -> None:
    pts = np.array([[0, 0, 0], [0.01, 0, 0], [0.02, 0, 0], [1, 1, 1], [1.01, 1, 1], [5, 5, 5]], dtype=float)
    assert dbscan(pts, eps=0.05, min_samples=2).tolist() == [0, 0, 0, 1, 1, -1]


def test_tima_separates_temporal_clusters() -> None:
    a = np.array([[100, 100, 0.3]] * 5 + [[400, 400, 0.3]] * 5, dtype=float)
    a[:, :2] += np.arange(10)[:, None]  # tiny drift so the points are distinct
    c = tima_clusters(a, (512, 512))
    assert c.shape == (2, 2)
    assert tima_similarity(c, c) == 1.0
    assert tima_similarity(c, c[::-1]) == pytest.approx(tima_similarity(c[::-1], c))


seqs = arrays(np.float64, st.tuples(st.integers(1, 6), st.just(2)), elements=st.floats(0.0, 100.0))


@settings(max_examples=60, deadline=None)
@given(a=seqs, b=seqs)
def test_tima_similarity_properties(a: np.ndarray, b: np.ndarray) -> None:
    s = tima_similarity(a, b)
    assert 0.0 <= s <= 1.0
    assert s == tima_similarity(b, a)
    assert tima_similarity(a, a) == 1.0


@pytest.mark.skipif(not DATA.is_dir(), reason="studyforrest fixation vectors not available")
def test_same_segment_is_more_similar_than_different_segments_for_heatmap_metrics() -> None:
    data = {p.stem: np.loadtxt(p, skiprows=1) for p in sorted(DATA.glob("segment_*.tsv"))}
    segs = sorted({k.split("_sub")[0] for k in data}, key=lambda s: int(s.split("_")[1]))
    feats = {k: compute_session_features(k, k, 0, v, (1280, 720)) for k, v in data.items()}
    a = np.stack([feats[f"{s}_sub-01"].heatmap for s in segs])
    b = np.stack([feats[f"{s}_sub-19"].heatmap for s in segs])
    ua = (a - a.mean(axis=(1, 2), keepdims=True)).reshape(len(segs), -1)
    ub = (b - b.mean(axis=(1, 2), keepdims=True)).reshape(len(segs), -1)
    ua /= np.linalg.norm(ua, axis=1, keepdims=True)
    ub /= np.linalg.norm(ub, axis=1, keepdims=True)
    corr = ua @ ub.T
    off = ~np.eye(len(segs), dtype=bool)
    assert np.diag(corr).mean() > corr[off].mean() + 0.1
