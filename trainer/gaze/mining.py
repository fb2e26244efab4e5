"""Incremental pair mining: which cases did a reader look at alike?

Sessions arrive one at a time (:meth:`PairMiner.add_session`).  A new session is scored only
against the earlier sessions *of the same reader* (a reader's gaze is compared with that reader's
own gaze), so adding one costs O(N) and never recomputes old pairs.  Case-to-case similarity is the
mean of the reader's session-pair scores for the two cases, aggregated over the readers who read
both (mean or max).  :meth:`PairMiner.pair_graph` turns that into a sparse graph of positive pairs
(threshold or top-k per case) with statistics.  :meth:`PairMiner.rebuild` recomputes everything
from the stored features (vectorised tiles for moments and dHash) and gives identical results.

Memory: each reader keeps a dense float32 matrix of its session-pair scores (4 bytes x n_r^2).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from trainer.arrays import FloatArray, IntArray
from trainer.gaze.features import SessionFeatures
from trainer.gaze.scoring import FeatureStore, MetricConfig


@dataclass(frozen=True)
class MiningConfig:
    """Pair-mining settings.

    Attributes:
        metric: session similarity (see :class:`trainer.gaze.scoring.MetricConfig`).
        aggregate: "mean" or "max" over the readers who read both cases.
        threshold: positives are case pairs scoring >= threshold (paper: 0.7; 0.9-0.95 strict).
        top_k: if set, positives are instead each case's ``top_k`` best partners (union).
        tile: rows per vectorised block in :meth:`PairMiner.rebuild`.
    """

    metric: MetricConfig = field(default_factory=MetricConfig)
    aggregate: Literal["mean", "max"] = "mean"
    threshold: float = 0.7
    top_k: int | None = None
    tile: int = 1024

    def __post_init__(self) -> None:
        if self.aggregate not in ("mean", "max"):
            raise ValueError(f"aggregate must be 'mean' or 'max', got {self.aggregate!r}")
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {self.threshold}")
        if self.top_k is not None and self.top_k < 1:
            raise ValueError(f"top_k must be >= 1 or None, got {self.top_k}")


class _ReaderBlock:
    """One reader's sessions and their pairwise scores (lower triangle filled, NaN = unscored)."""

    def __init__(self) -> None:
        self.sessions: list[int] = []
        self.scores = np.full((16, 16), np.nan, dtype=np.float32)

    def grow(self) -> None:
        n = len(self.sessions)
        if n >= self.scores.shape[0]:
            cap = 2 * self.scores.shape[0]
            bigger = np.full((cap, cap), np.nan, dtype=np.float32)
            bigger[:n, :n] = self.scores[:n, :n]
            self.scores = bigger


@dataclass(frozen=True)
class PairGraph:
    """Sparse case-pair graph.

    Attributes:
        case_a, case_b: (E,) case ids of each pair (``case_a`` sorts before ``case_b``).
        score: (E,) aggregated similarity.
        n_readers: (E,) readers contributing a score.
        positive: (E,) pair selected as positive (threshold or top-k).
        cases: all case ids seen, sorted.
    """

    case_a: NDArray[Any]
    case_b: NDArray[Any]
    score: FloatArray
    n_readers: IntArray
    positive: NDArray[np.bool_]
    cases: NDArray[Any]

    def positives(self) -> list[tuple[Any, Any, float]]:
        """(case_a, case_b, score) of the positive pairs."""
        m = self.positive
        a, b, v = self.case_a[m].tolist(), self.case_b[m].tolist(), self.score[m].tolist()
        return list(zip(a, b, v, strict=True))

    def stats(self, bins: int = 20) -> dict[str, Any]:
        """Similarity histogram over all scored pairs, positives per case, coverage."""
        hist, edges = np.histogram(self.score, bins=bins, range=(0.0, 1.0))
        per_case = {c: 0 for c in self.cases.tolist()}
        pos_a, pos_b = self.case_a[self.positive].tolist(), self.case_b[self.positive].tolist()
        for a, b in zip(pos_a, pos_b, strict=True):
            per_case[a] += 1
            per_case[b] += 1
        counts = np.array(list(per_case.values()), dtype=np.int64)
        return {
            "pairs_scored": int(self.score.size),
            "positives": int(self.positive.sum()),
            "histogram": hist.tolist(),
            "bin_edges": edges.tolist(),
            "positives_per_case": per_case,
            "mean_positives_per_case": float(counts.mean()) if counts.size else 0.0,
            "coverage": float((counts > 0).mean()) if counts.size else 0.0,
        }


class PairMiner:
    """In-memory incremental pair miner.

    Example:
        >>> miner = PairMiner(MiningConfig(threshold=0.8))
        >>> for f in features:             # SessionFeatures, in arrival order
        ...     miner.add_session(f)
        >>> graph = miner.pair_graph()
    """

    def __init__(self, config: MiningConfig | None = None) -> None:
        self.config = config or MiningConfig()
        self.store = FeatureStore(self.config.metric)
        self.readers: dict[Any, _ReaderBlock] = {}

    @classmethod
    def from_features(
        cls, features: Iterable[SessionFeatures], config: MiningConfig | None = None
    ) -> PairMiner:
        """Full recompute: load all features, then score every same-reader pair in tiles."""
        miner = cls(config)
        for f in features:
            miner._register(f)
        miner.rebuild()
        return miner

    def __len__(self) -> int:
        return len(self.store)

    def _register(self, f: SessionFeatures) -> tuple[_ReaderBlock, int]:
        idx = self.store.add(f)
        block = self.readers.setdefault(f.reader_id, _ReaderBlock())
        block.sessions.append(idx)
        block.grow()
        return block, idx

    def add_session(self, features: SessionFeatures) -> int:
        """Add one session and score it against the reader's earlier sessions (O(N)).

        Returns:
            Number of session pairs scored.
        """
        block, idx = self._register(features)
        row = len(block.sessions) - 1
        earlier = np.asarray(block.sessions[:row], dtype=np.int64)
        block.scores[row, :row] = self.store.score(idx, earlier)
        return int(np.isfinite(block.scores[row, :row]).sum())

    def rebuild(self) -> None:
        """Recompute every reader's score matrix from the stored features."""
        vectorised = self.config.metric.metric in ("moments", "dhash")
        tile = self.config.tile
        for block in self.readers.values():
            ids = np.asarray(block.sessions, dtype=np.int64)
            n = ids.size
            block.scores[:n, :n] = np.nan
            if vectorised:
                for r0 in range(0, n, tile):
                    r1 = min(n, r0 + tile)
                    sims = self.store.block(ids[r0:r1], ids[:r1])
                    low = np.tril(np.ones((r1 - r0, r1), dtype=bool), k=r0 - 1)
                    block.scores[r0:r1, :r1] = np.where(low, sims, np.nan)
            else:
                for row in range(1, n):
                    block.scores[row, :row] = self.store.score(int(ids[row]), ids[:row])

    def _reader_case_scores(self, block: _ReaderBlock) -> tuple[NDArray[Any], FloatArray]:
        """Case ids (c,) and symmetric (c, c) mean session-pair score of one reader (NaN = none)."""
        n = len(block.sessions)
        cases = np.array([self.store.features[i].case_id for i in block.sessions], dtype=object)
        uniq, inv = np.unique(cases, return_inverse=True)
        s = block.scores[:n, :n].astype(np.float64)
        s = np.where(np.isnan(s), s.T, s)  # mirror the lower triangle
        onehot = np.zeros((n, uniq.size))
        onehot[np.arange(n), inv] = 1.0
        scored = np.isfinite(s).astype(np.float64)
        total = onehot.T @ np.where(scored > 0, s, 0.0) @ onehot
        count = onehot.T @ scored @ onehot
        with np.errstate(invalid="ignore"):
            mean = np.where(count > 0, total / np.where(count > 0, count, 1.0), np.nan)
        np.fill_diagonal(mean, np.nan)
        return uniq, mean

    def case_scores(self) -> tuple[NDArray[Any], NDArray[Any], FloatArray, IntArray]:
        """All scored case pairs: (case_a, case_b, aggregated score, readers), case_a < case_b."""
        keys: list[NDArray[Any]] = []
        vals: list[FloatArray] = []
        for block in self.readers.values():
            cases, mean = self._reader_case_scores(block)
            upper = np.triu(np.ones_like(mean, dtype=bool), k=1)
            ia, ib = np.nonzero(np.isfinite(mean) & upper)
            pairs = np.empty(ia.size, dtype=object)
            pairs[:] = list(zip(cases[ia].tolist(), cases[ib].tolist(), strict=True))
            keys.append(pairs)
            vals.append(mean[ia, ib])
        if not keys or sum(k.size for k in keys) == 0:
            empty = np.empty(0, dtype=object)
            return empty, empty, np.empty(0), np.empty(0, dtype=np.int64)
        allk = np.concatenate(keys)
        allv = np.concatenate(vals)
        agg: dict[tuple[Any, Any], list[float]] = {}
        for k, v in zip(allk.tolist(), allv.tolist(), strict=True):
            agg.setdefault(k, []).append(v)
        items = sorted(agg.items())
        reduce = np.mean if self.config.aggregate == "mean" else np.max
        ca = np.array([k[0] for k, _ in items], dtype=object)
        cb = np.array([k[1] for k, _ in items], dtype=object)
        score = np.array([float(reduce(v)) for _, v in items])
        readers = np.array([len(v) for _, v in items], dtype=np.int64)
        return ca, cb, score, readers

    def pair_graph(self) -> PairGraph:
        """Sparse graph of scored case pairs with positives selected by threshold or top-k."""
        ca, cb, score, readers = self.case_scores()
        cases = np.array(sorted({f.case_id for f in self.store.features}), dtype=object)
        if self.config.top_k is None:
            positive = score >= self.config.threshold
        else:
            positive = np.zeros(score.size, dtype=bool)
            by_case: dict[Any, list[int]] = {}
            for e, (a, b) in enumerate(zip(ca.tolist(), cb.tolist(), strict=True)):
                by_case.setdefault(a, []).append(e)
                by_case.setdefault(b, []).append(e)
            for edges in by_case.values():
                idx = np.asarray(edges)
                # Highest scores first; ties by edge order (sorted case ids), so the result is stable.
                best = idx[np.argsort(-score[idx], kind="stable")[: self.config.top_k]]
                positive[best] = True
        return PairGraph(ca, cb, score, readers, positive, cases)
