"""MultiMatch part of ``mcgip bench pairs``: speed and agreement against ``multimatch-gaze``.

Every figure is measured in this process on the same inputs: the reference scores pairs one by one
(``docomparison``), ours scores the same pairs in one batch (scanpath preparation included).  Values
must agree within 1e-6 wherever the reference returns; pairs where it raises are counted.
"""

from __future__ import annotations

import random
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from trainer.gaze.multimatch import (
    multimatch,
    multimatch_indexed,
    multimatch_many,
    prepare_scanpath,
    stack_scanpaths,
)

SCREEN = (1280.0, 720.0)
GROUPING: dict[str, Any] = {"grouping": True, "tdir": 45.0, "tdur": 0.05, "tamp": 150.0}
_DATA_DIRS = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "studyforrest-fixvectors",
    Path("/work/shared/data/studyforrest-fixvectors"),
)


def load_studyforrest() -> list[np.ndarray]:
    """The 110 real scanpaths (x, y, duration s), or an empty list when the data is absent."""
    for d in _DATA_DIRS:
        files = sorted(d.glob("segment_*_sub-*.tsv"))
        if files:
            return [np.loadtxt(f, skiprows=1, ndmin=2) for f in files]
    return []


def synthetic_scanpaths(count: int, seed: int = 0) -> list[np.ndarray]:
    """Scanpaths on a 1280x720 screen: 10-60 fixations hopping between a few regions of interest.

    Returns:
        ``count`` arrays (n, 3) of x, y (px) and duration (s, log-normal around 250 ms).
    """
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        n = int(rng.integers(10, 61))
        rois = rng.uniform((100, 80), (1180, 640), size=(int(rng.integers(2, 7)), 2))
        pick = rng.integers(0, rois.shape[0], n)
        xy = rois[pick] + rng.normal(0, 40, (n, 2))
        xy = np.clip(xy, 0, SCREEN)
        dur = np.clip(rng.lognormal(np.log(0.22), 0.45, n), 0.05, 1.5)
        out.append(np.column_stack((xy, dur)))
    return out


def _reference(a: np.ndarray, b: np.ndarray, kw: dict[str, Any]) -> np.ndarray | None:
    import multimatch_gaze

    dtype = [("start_x", "f8"), ("start_y", "f8"), ("duration", "f8")]
    ra = np.rec.fromarrays(list(a.T), dtype=dtype)
    rb = np.rec.fromarrays(list(b.T), dtype=dtype)
    ref_kw = {
        "grouping": kw.get("grouping", False),
        "TDir": kw.get("tdir", 0.0),
        "TDur": kw.get("tdur", 0.0),
        "TAmp": kw.get("tamp", 0.0),
    }
    try:
        return np.asarray(multimatch_gaze.docomparison(ra, rb, screensize=list(SCREEN), **ref_kw), float)
    except (IndexError, ValueError):
        return None


def _best_of(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def compare(
    label: str, paths: Sequence[np.ndarray], pairs: Sequence[tuple[int, int]], kw: dict[str, Any]
) -> list[str]:
    """Time reference vs ours on ``pairs`` of ``paths``; report lines."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        refs = [_reference(paths[i], paths[j], kw) for i, j in pairs]
        t_ref = time.perf_counter() - t0

    def ours() -> np.ndarray:
        used = sorted({k for p in pairs for k in p})
        prepared = {k: prepare_scanpath(paths[k], **kw) for k in used}
        return multimatch_many([prepared[i] for i, _ in pairs], [prepared[j] for _, j in pairs], SCREEN)

    t_ours, got = _best_of(ours, 3)
    ok = [r for r, ref in enumerate(refs) if ref is not None]
    diff = max((float(np.nanmax(np.abs(got[r] - refs[r]))) for r in ok), default=0.0)
    n_single = min(len(pairs), 200)
    t1 = time.perf_counter()
    for i, j in pairs[:n_single]:
        multimatch(paths[i], paths[j], SCREEN, **kw)
    t_single = (time.perf_counter() - t1) / n_single
    per_ref, per_ours = t_ref / len(pairs), t_ours / len(pairs)
    return [
        f"multimatch {label}: {len(pairs)} pairs, reference raised on {len(pairs) - len(ok)}",
        f"  reference {per_ref * 1e3:.3f} ms/pair | ours batched {per_ours * 1e6:.1f} us/pair"
        f" -> {per_ref / per_ours:.0f}x (target >= 50x) | ours one call {t_single * 1e3:.3f} ms/pair"
        f" ({per_ref / t_single:.1f}x)",
        f"  max |ours - reference| = {diff:.2e} (target <= 1e-6)",
    ]


def add_one_timing(existing: int, seed: int = 1) -> list[str]:
    """Score one new scanpath against ``existing`` stored (stacked) ones."""
    paths = synthetic_scanpaths(existing + 1, seed=seed)
    stored = [prepare_scanpath(p) for p in paths[:existing]]
    stack = stack_scanpaths([p for p in stored if p is not None])

    def add() -> np.ndarray:
        new = stack_scanpaths([prepare_scanpath(paths[-1])])  # type: ignore[list-item]
        return multimatch_indexed(
            new, np.zeros(stack.n.shape[0], dtype=np.int64), stack, np.arange(stack.n.shape[0]), SCREEN
        )

    t, _ = _best_of(add, 3)
    return [f"multimatch add one session to {existing:,} stored: {t:.3f} s (target <= 10 s)"]


def bench_multimatch(quick: bool = False) -> list[str]:
    """Run the MultiMatch benchmark figures; returns report lines.

    Args:
        quick: Small inputs for a smoke run (seconds instead of a minute).
    """
    rng = random.Random(0)
    lines: list[str] = []
    if quick:
        lines.append("multimatch (quick smoke run: batches too small to amortise, not the figures)")
    real = load_studyforrest()
    if real:
        all_pairs = [(i, j) for i in range(len(real)) for j in range(i + 1, len(real))]
        pairs = rng.sample(all_pairs, 60 if quick else 1000)
        lines += compare("studyforrest (real)", real, pairs, {})
        lines += compare("studyforrest (real), grouping 45deg/50ms/150px", real, pairs, GROUPING)
    else:
        lines.append("multimatch studyforrest: data not found, skipped")
    synth = synthetic_scanpaths(100 if quick else 1000, seed=0)
    n_pairs = 100 if quick else 2000
    pairs = [(rng.randrange(len(synth)), rng.randrange(len(synth))) for _ in range(n_pairs)]
    lines += compare(f"synthetic ({len(synth)} scanpaths)", synth, pairs, {})
    lines += add_one_timing(500 if quick else 10_000)
    return lines
