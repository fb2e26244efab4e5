"""Session-to-session similarity over a growing store of precomputed features.

:class:`FeatureStore` keeps every session's features packed in arrays (moments, dHash bits,
correlation vectors, descriptors, stacked MultiMatch scanpaths) so that one session is scored
against many with a few vectorised calls.  Scores are computed the same way whether a row is
scored when a session arrives or during a rebuild, so incremental and full results are identical.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from trainer.arrays import FloatArray, IntArray
from trainer.gaze.correlation import centred_unit
from trainer.gaze.dhash import _cosine
from trainer.gaze.features import MULTIMATCH_FRAME, SessionFeatures
from trainer.gaze.moments import WEIGHTS_UNSTRUCTURED, check_weights, moment_similarity
from trainer.gaze.multimatch import (
    DEFAULT_COMBINED_WEIGHTS,
    StackedScanpaths,
    combined_score,
    multimatch_indexed,
    prepare_scanpath,
    stack_scanpaths,
)
from trainer.gaze.scanpath import Scanpath
from trainer.gaze.tima import tima_similarity

Metric = Literal["moments", "dhash", "correlation", "multimatch", "tima"]
METRICS: tuple[str, ...] = ("moments", "dhash", "correlation", "multimatch", "tima")


@dataclass(frozen=True)
class MetricConfig:
    """Which similarity to use and its per-dataset settings.

    Attributes:
        metric: "moments" (paper default), "dhash", "correlation" (structured images),
            "multimatch" (combined score) or "tima".
        moment_weights: (w_i1, w_m00), e.g. (0.5, 0.5) unstructured, (0.8, 0.2) structured.
        multimatch_weights: five weights of :func:`trainer.gaze.multimatch.combined_score`.
        grouping, tdir, tdur, tamp: MultiMatch simplification.
        prefilter_k: MultiMatch only: score exactly only the ``prefilter_k`` most similar earlier
            sessions by scanpath descriptor (cosine); others stay unscored (NaN).  None = all.
    """

    metric: Metric = "moments"
    moment_weights: tuple[float, float] = WEIGHTS_UNSTRUCTURED
    multimatch_weights: tuple[float, float, float, float, float] = DEFAULT_COMBINED_WEIGHTS
    grouping: bool = False
    tdir: float = 0.0
    tdur: float = 0.0
    tamp: float = 0.0
    prefilter_k: int | None = None

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, got {self.metric!r}")
        check_weights(self.moment_weights)
        if self.prefilter_k is not None and self.prefilter_k < 1:
            raise ValueError(f"prefilter_k must be >= 1 or None, got {self.prefilter_k}")


class _Growable:
    """Row-appendable 2-D array with amortised doubling."""

    def __init__(self, width: int, dtype: type = np.float64) -> None:
        self.data: NDArray[Any] = np.zeros((16, width), dtype=dtype)
        self.n = 0

    def append(self, row: NDArray[np.generic]) -> None:
        if self.n == self.data.shape[0]:
            self.data = np.concatenate((self.data, np.zeros_like(self.data)))
        self.data[self.n] = row
        self.n += 1

    @property
    def view(self) -> NDArray[Any]:
        return self.data[: self.n]


class FeatureStore:
    """Packed features of all sessions, indexed 0..N-1 in arrival order."""

    def __init__(self, config: MetricConfig) -> None:
        self.config = config
        self.features: list[SessionFeatures] = []
        self._moments = _Growable(2)
        self._bits = _Growable(64, np.float32)
        self._popcount = _Growable(1)
        self._descr = _Growable(32)
        self._unit: _Growable | None = None
        self._flat: list[bool] = []
        self._paths: list[Scanpath | None] = []
        self._stack_cache: tuple[int, tuple[StackedScanpaths, IntArray]] | None = None

    def __len__(self) -> int:
        return len(self.features)

    def add(self, f: SessionFeatures) -> int:
        """Append one session's features; returns its index."""
        cfg = self.config
        self.features.append(f)
        self._moments.append(f.moments)
        self._bits.append(f.dhash.astype(np.float32))
        self._popcount.append(np.array([f.dhash.sum()], dtype=np.float64))
        self._descr.append(f.descriptor)
        if cfg.metric == "correlation":
            unit, flat = centred_unit(f.heatmap[None])
            if self._unit is None:
                self._unit = _Growable(unit.shape[1])
            self._unit.append(unit[0])
            self._flat.append(bool(flat[0]))
        if cfg.metric == "multimatch":
            fix = f.multimatch_fixations()
            kw = {"grouping": cfg.grouping, "tdir": cfg.tdir, "tdur": cfg.tdur, "tamp": cfg.tamp}
            self._paths.append(prepare_scanpath(fix, **kw))  # type: ignore[arg-type]
        return len(self.features) - 1

    def candidates(self, i: int, others: IntArray) -> IntArray:
        """Subset of ``others`` to score exactly for session ``i`` (the MultiMatch prefilter)."""
        k = self.config.prefilter_k
        if self.config.metric != "multimatch" or k is None or others.size <= k:
            return others
        d = self._descr.view
        # Elementwise product + sum (not BLAS) so the ranking is the same in every code path.
        cheap = (d[others] * d[i]).sum(axis=1)
        keep = np.argsort(-cheap, kind="stable")[:k]
        return np.sort(others[keep])

    def score(self, i: int, others: IntArray) -> FloatArray:
        """(k,) similarity of session ``i`` with each of ``others`` (NaN where not scored)."""
        out = np.full(others.shape[0], np.nan)
        if others.size == 0:
            return out
        cand = self.candidates(i, others)
        pos = np.searchsorted(others, cand) if cand is not others else np.arange(others.size)
        out[pos] = self._exact(i, cand)
        return out

    def _exact(self, i: int, others: IntArray) -> FloatArray:
        cfg = self.config
        if cfg.metric == "moments":
            m = self._moments.view
            return moment_similarity(m[i][None, :], m[others], cfg.moment_weights)
        if cfg.metric == "dhash":
            b, pop = self._bits.view, self._popcount.view[:, 0]
            dot = (b[others] @ b[i]).astype(np.float64)
            return _cosine(dot, pop[i], pop[others])
        if cfg.metric == "correlation":
            assert self._unit is not None
            u = self._unit.view
            r = np.clip((u[others] * u[i]).sum(axis=1), -1.0, 1.0)
            flat = np.asarray(self._flat)
            both, one = flat[i] & flat[others], flat[i] ^ flat[others]
            return np.where(both, 1.0, np.where(one, 0.5, (1.0 + r) / 2.0))
        if cfg.metric == "tima":
            ti = self.features[i].tima
            return np.array([tima_similarity(ti, self.features[j].tima) for j in others.tolist()])
        return self._multimatch(i, others)

    def _multimatch(self, i: int, others: IntArray) -> FloatArray:
        out = np.zeros(others.shape[0])  # too-short scanpaths are not comparable: score 0
        if self._paths[i] is None:
            return out
        ok = np.array([self._paths[j] is not None for j in others.tolist()], dtype=bool)
        if not ok.any():
            return out
        stack, row_of = self._stack()
        measures = multimatch_indexed(
            stack,
            np.full(int(ok.sum()), row_of[i]),
            stack,
            row_of[others[ok]],
            MULTIMATCH_FRAME,
        )
        out[ok] = combined_score(measures, self.config.multimatch_weights)
        return out

    def _stack(self) -> tuple[StackedScanpaths, IntArray]:
        """Stacked scanpaths of all comparable sessions, rebuilt only when sessions were added."""
        n = len(self._paths)
        if self._stack_cache is None or self._stack_cache[0] != n:
            ok = [j for j, p in enumerate(self._paths) if p is not None]
            row_of = np.full(n, -1, dtype=np.int64)
            row_of[ok] = np.arange(len(ok))
            stack = stack_scanpaths([p for p in self._paths if p is not None])
            self._stack_cache = (n, (stack, row_of))
        return self._stack_cache[1]

    def block(self, rows: IntArray, cols: IntArray) -> FloatArray:
        """(r, c) similarities for moments / dHash, fully vectorised (equal to :meth:`score` rows)."""
        cfg = self.config
        if cfg.metric == "moments":
            m = self._moments.view
            return moment_similarity(m[rows][:, None, :], m[cols][None, :, :], cfg.moment_weights)
        if cfg.metric == "dhash":
            b, pop = self._bits.view, self._popcount.view[:, 0]
            dot = (b[rows] @ b[cols].T).astype(np.float64)
            return _cosine(dot, pop[rows][:, None], pop[cols][None, :])
        raise ValueError(f"block scoring is only vectorised for moments and dhash, not {cfg.metric!r}")
