"""Benchmark: gaze pair mining (``mcgip bench pairs``; also ``python -m bench.pairs``).

Every figure is a ratio against a reference run in this process on the same inputs:

* MultiMatch per pair vs ``multimatch-gaze`` (real studyforrest + synthetic scanpaths), with the
  largest value difference (see :mod:`bench.pairs_multimatch`);
* heatmap moments vs a per-pixel double loop written the way the paper's code is, with equal values;
* adding one session to N stored ones (moments, dHash; MultiMatch in the section above), and the
  recall of the MultiMatch candidate prefilter against exhaustive scoring;
* all-pairs moment similarity for N sessions in bounded-memory tiles.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from bench.pairs_multimatch import bench_multimatch, synthetic_scanpaths
from trainer.gaze.features import SessionFeatures, compute_session_features
from trainer.gaze.heatmap import gaussian_heatmap
from trainer.gaze.mining import MiningConfig, PairMiner
from trainer.gaze.moments import moment_features_batch, moment_similarity_tiles
from trainer.gaze.scoring import FeatureStore, MetricConfig

IMAGE = (1280.0, 720.0)


def _best(fn: Callable[[], Any], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def paper_moments(img: np.ndarray) -> tuple[float, float]:
    """(M00, I1) by per-pixel Python loops, as in the paper's code (but accumulating in float64)."""
    h, w = img.shape
    m00 = m10 = m01 = 0.0
    for y in range(h):
        for x in range(w):
            v = float(img[y, x])
            m00 += v
            m10 += x * v
            m01 += y * v
    xc, yc = m10 / m00, m01 / m00
    mu20 = mu02 = 0.0
    for y in range(h):
        for x in range(w):
            v = float(img[y, x])
            mu20 += (x - xc) ** 2 * v
            mu02 += (y - yc) ** 2 * v
    return m00, (mu20 + mu02) / m00**2


def bench_moments(n_maps: int) -> list[str]:
    paths = synthetic_scanpaths(n_maps, seed=3)
    maps = np.stack([gaussian_heatmap(p, IMAGE) for p in paths])
    t0 = time.perf_counter()
    ref = np.array([paper_moments(m) for m in maps])
    t_ref = (time.perf_counter() - t0) / n_maps
    t_ours = _best(lambda: moment_features_batch(maps), repeat=7) / n_maps
    ours = moment_features_batch(maps)
    rel = float(np.max(np.abs(ours - ref) / np.abs(ref)))
    return [
        f"moments: {n_maps} heatmaps 32x32 | per-pixel loop {t_ref * 1e3:.3f} ms/map | ours "
        f"{t_ours * 1e6:.2f} us/map -> {t_ref / t_ours:,.0f}x (target >= 1,000x) | max rel. diff {rel:.1e}"
    ]


def _pool_features(n: int, n_distinct: int, readers: int = 1) -> list[SessionFeatures]:
    """n sessions built from ``n_distinct`` computed feature sets (fresh ids; same cost to score)."""
    paths = synthetic_scanpaths(n_distinct, seed=5)
    base = [compute_session_features(i, i, 0, p, IMAGE) for i, p in enumerate(paths)]
    return [
        dataclasses.replace(base[i % n_distinct], session_id=i, case_id=i, reader_id=i % readers)
        for i in range(n)
    ]


def bench_add_one(existing: int, n_distinct: int) -> list[str]:
    feats = _pool_features(existing + 1, n_distinct)
    lines = []
    for metric in ("moments", "dhash"):
        cfg = MiningConfig(metric=MetricConfig(metric))
        miner = PairMiner(cfg)
        t0 = time.perf_counter()
        for f in feats[:existing]:
            miner.add_session(f)
        t_fill = time.perf_counter() - t0
        t0 = time.perf_counter()
        scored = miner.add_session(feats[-1])
        t_add = time.perf_counter() - t0
        lines.append(
            f"{metric}: add one session to {existing:,} (one reader, {scored:,} pairs scored): "
            f"{t_add * 1e3:.1f} ms (target <= 1 s); adding all {existing:,} one by one took {t_fill:.1f} s"
        )
    return lines


def bench_prefilter_recall(existing: int, queries: int, k: int, top: int = 10) -> list[str]:
    """Recall of the descriptor prefilter: share of the exhaustive top-``top`` pairs it keeps."""
    feats = _pool_features(existing + queries, existing + queries)
    exact = FeatureStore(MetricConfig("multimatch"))
    pre = FeatureStore(MetricConfig("multimatch", prefilter_k=k))
    for f in feats:
        exact.add(f)
        pre.add(f)
    others = np.arange(existing, dtype=np.int64)
    hits = 0
    t_ex = t_pre = 0.0
    for q in range(existing, existing + queries):
        t0 = time.perf_counter()
        full = exact.score(q, others)
        t_ex += time.perf_counter() - t0
        t0 = time.perf_counter()
        approx = pre.score(q, others)
        t_pre += time.perf_counter() - t0
        best = np.argsort(-full, kind="stable")[:top]
        hits += int(np.isfinite(approx[best]).sum())
    return [
        f"multimatch prefilter: keep {k} of {existing:,} by descriptor -> recall of exhaustive top-{top} "
        f"{hits / (queries * top):.2f}; {t_ex / queries * 1e3:.0f} ms exhaustive vs "
        f"{t_pre / queries * 1e3:.0f} ms prefiltered per new session"
    ]


def bench_all_pairs(n: int, threshold: float = 0.9) -> list[str]:
    rng = np.random.default_rng(0)
    maps = rng.random((min(n, 2000), 32, 32)) ** 4
    feats = moment_features_batch(maps)[rng.integers(0, maps.shape[0], n)]
    positives = 0

    def run() -> None:
        nonlocal positives
        positives = 0
        for r, c, block in moment_similarity_tiles(feats, feats, tile=2048, upper=True):
            hit = block >= threshold
            if r == c:  # diagonal tile: each unordered pair once, no self-pairs
                hit = np.triu(hit, k=1)
            positives += int(np.count_nonzero(hit))

    t = _best(run, 1)
    return [
        f"moments all-pairs for {n:,} sessions ({n * (n - 1) // 2:,} pairs, tiles of 2048): {t:.2f} s "
        f"(target <= 10 s; upper-triangle tiles); {positives:,} pairs >= {threshold}"
    ]


def main(argv: list[str] | None = None) -> int:
    """Run the pair-mining benchmark and print the report; returns an exit code."""
    parser = argparse.ArgumentParser(prog="mcgip bench pairs", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small inputs for a smoke run")
    args = parser.parse_args(argv)
    q = args.quick
    print("# bench pairs" + (" (quick)" if q else ""))
    lines = bench_multimatch(quick=q)
    lines += bench_moments(20 if q else 200)
    lines += bench_add_one(300 if q else 10_000, 50 if q else 500)
    lines += bench_prefilter_recall(200 if q else 2_000, 3 if q else 20, 20 if q else 200)
    lines += bench_all_pairs(500 if q else 10_000)
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
