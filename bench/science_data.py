"""Data side of ``mcgip bench science``: synthetic cases, simulated readers with gaze error in
degrees, mined gaze pairs and the control pair sets (numpy only, no torch).

Every pair set lives on the *pre-training pool* (the cases the encoder is pre-trained on); the
evaluation pool is never read by readers' pairs, oracle labels or training, so nothing about an
evaluated case can leak into its features.

Control pairs have exactly the McGIP pair count:

- ``shuffled``: the McGIP graph with case ids permuted (same shape, pairs unrelated to content);
- ``random``: uniformly random distinct case pairs;
- ``oracle``: random distinct pairs of cases with the same label (upper bound: every pair right).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from trainer.gaze import MetricConfig, MiningConfig, PairMiner, compute_session_features
from trainer.synthetic.images import SyntheticCase, generate_dataset
from trainer.synthetic.readers import DEMO_READERS, ReaderProfile, simulate_session

__all__ = [
    "READERS",
    "CaseSet",
    "PairSet",
    "build_cases",
    "crop_edges",
    "gaze_centres",
    "noisy_fixations",
    "random_centres",
    "tile_centres",
    "write_crops",
    "control_pairs",
    "mine_pairs",
    "pair_precision",
    "simulate_fixations",
]

IntPairs = NDArray[np.int64]

#: Up to four simulated readers: the two demo readers and two more with their own habits.
READERS: tuple[ReaderProfile, ...] = (
    *DEMO_READERS,
    dataclasses.replace(
        DEMO_READERS[0], name="reader3", seed=3, search_pattern="columns", fixation_ms_mean=270.0
    ),
    dataclasses.replace(
        DEMO_READERS[1], name="reader4", seed=4, search_pattern="rows", free_search_fraction=0.3
    ),
)


@dataclass(frozen=True)
class CaseSet:
    """One generated data set written as PNGs.

    Attributes:
        ids: case ids (``case00000``...). paths: PNG per case. labels: class per case.
        cases: the generated cases (ground truth, at the generation size).
        pretrain: indices of the pre-training pool; evaluate: indices of the evaluation pool.
    """

    ids: list[str]
    paths: list[Path]
    labels: list[str]
    cases: list[SyntheticCase]
    pretrain: list[int]
    evaluate: list[int]


def build_cases(
    root: Path,
    *,
    n: int,
    seed: int,
    gen_size: int,
    store_size: int,
    classes: Sequence[str],
    finding_scale: float,
    finding_contrast: float,
    eval_fraction: float = 0.5,
) -> CaseSet:
    """Generate ``n`` balanced cases, write them as 16-bit PNGs at ``store_size`` and split the pools.

    The split is stratified by class and seeded by ``seed`` (``eval_fraction`` of each class goes
    to the evaluation pool).
    """
    data = generate_dataset(
        n,
        seed=seed,
        size=gen_size,
        classes=tuple(classes),
        finding_scale=finding_scale,
        finding_contrast=finding_contrast,
    )
    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    ids, paths = [], []
    for i, case in enumerate(data):
        path = images / f"case{i:05d}.png"
        Image.fromarray(case.image.astype(np.uint16)).resize(
            (store_size, store_size), Image.Resampling.BOX
        ).save(path)
        ids.append(f"case{i:05d}")
        paths.append(path)
    labels = [c.label for c in data]
    rng = np.random.default_rng([seed, 99])
    evaluate: list[int] = []
    for name in sorted(set(labels)):
        members = [i for i, y in enumerate(labels) if y == name]
        rng.shuffle(members)
        evaluate += members[: round(eval_fraction * len(members))]
    chosen = set(evaluate)
    pretrain = [i for i in range(n) if i not in chosen]
    return CaseSet(ids, paths, labels, data, pretrain, sorted(evaluate))


def simulate_fixations(
    cases: Sequence[SyntheticCase], indices: Sequence[int], readers: Sequence[ReaderProfile], seed: int
) -> dict[str, list[NDArray[np.float64]]]:
    """True fixations (n, 3: x, y px, duration s) of every reader on ``cases[indices]``.

    Returns:
        reader name -> one array per entry of ``indices``, in that order.
    """
    out: dict[str, list[NDArray[np.float64]]] = {}
    for reader in readers:
        sessions = []
        for i in indices:
            session_seed = int(np.random.SeedSequence([seed, i, reader.seed]).generate_state(1)[0])
            sessions.append(simulate_session(cases[i], reader, seed=session_seed).fixations)
        out[reader.name] = sessions
    return out


def _noisy(fixations: NDArray[np.float64], sigma_px: float, rng: np.random.Generator) -> NDArray[np.float64]:
    """Fixations displaced by isotropic Gaussian gaze error of ``sigma_px`` per axis."""
    out = np.array(fixations, dtype=np.float64, copy=True)
    if sigma_px > 0 and out.size:
        out[:, :2] += rng.normal(0.0, sigma_px, size=(out.shape[0], 2))
    return out


def noisy_fixations(
    fixations: dict[str, list[NDArray[np.float64]]],
    readers: Sequence[str],
    noise_deg: float,
    pixels_per_degree: float,
    seed: int,
) -> dict[str, list[NDArray[np.float64]]]:
    """Every reader's fixations displaced by Gaussian gaze error of ``noise_deg`` degrees per axis.

    Seeded by ``seed``, the reader's position in ``readers``, the pool position and the noise level,
    so pair mining and gaze crops see the same recorded gaze.
    """
    sigma = noise_deg * pixels_per_degree
    out: dict[str, list[NDArray[np.float64]]] = {}
    for r, reader in enumerate(readers):
        out[reader] = [
            _noisy(fixes, sigma, np.random.default_rng([seed, r, pos, round(noise_deg * 1000)]))
            for pos, fixes in enumerate(fixations[reader])
        ]
    return out


@dataclass(frozen=True)
class PairSet:
    """Pairs of one condition over pool positions, and their label precision.

    Attributes:
        pairs: (E, 2) positions into the pre-training pool (a < b not required).
        precision: share of pairs whose two cases have the same label (NaN without pairs).
    """

    pairs: IntPairs
    precision: float


def pair_precision(pairs: IntPairs, labels: Sequence[str]) -> float:
    """Share of ``pairs`` (positions into ``labels``) joining two cases of the same class."""
    if pairs.shape[0] == 0:
        return float("nan")
    lab = np.asarray(labels)
    return float(np.mean(lab[pairs[:, 0]] == lab[pairs[:, 1]]))


def mine_pairs(
    fixations: dict[str, list[NDArray[np.float64]]],
    labels: Sequence[str],
    *,
    readers: Sequence[str],
    noise_deg: float,
    pixels_per_degree: float,
    gen_size: int,
    metric: str,
    top_k: int,
    seed: int,
) -> PairSet:
    """Gaze pairs of the pool as the product mines them: per-reader session similarity, top-k partners.

    Each fixation is displaced by Gaussian gaze error of ``noise_deg`` degrees per axis (seeded by
    ``seed``, the reader and the case), then turned into session features and mined with ``metric``.

    Args:
        fixations: reader -> fixations per pool position (:func:`simulate_fixations`).
        labels: class per pool position (for the precision only).

    Returns:
        The pairs over pool positions and their precision against ``labels``.
    """
    noisy = noisy_fixations(fixations, readers, noise_deg, pixels_per_degree, seed)
    features = [
        compute_session_features(f"{reader}-{pos}", pos, reader, fix, (gen_size, gen_size))
        for reader in readers
        for pos, fix in enumerate(noisy[reader])
    ]
    mining = MiningConfig(metric=MetricConfig(metric=metric), top_k=top_k)  # type: ignore[arg-type]
    mined = PairMiner.from_features(features, mining).pair_graph().positives()
    pairs = np.array([(int(a), int(b)) for a, b, _ in mined], dtype=np.int64).reshape(-1, 2)
    return PairSet(pairs, pair_precision(pairs, labels))


def _distinct_pairs(candidates: list[NDArray[np.int64]], count: int, rng: np.random.Generator) -> IntPairs:
    """``count`` distinct unordered pairs, each drawn within one of the candidate groups."""
    sizes = np.array([len(c) * (len(c) - 1) // 2 for c in candidates], dtype=np.float64)
    if count > sizes.sum():
        raise ValueError(f"cannot draw {count} distinct pairs from {int(sizes.sum())}")
    seen: set[tuple[int, int]] = set()
    out: list[tuple[int, int]] = []
    while len(out) < count:
        group = candidates[int(rng.choice(len(candidates), p=sizes / sizes.sum()))]
        a, b = rng.choice(group, size=2, replace=False)
        key = (int(min(a, b)), int(max(a, b)))
        if key not in seen:
            seen.add(key)
            out.append(key)
    return np.array(out, dtype=np.int64).reshape(-1, 2)


def control_pairs(mcgip: IntPairs, labels: Sequence[str], seed: int) -> dict[str, PairSet]:
    """The shuffled, random and oracle pair sets, each with exactly ``len(mcgip)`` pairs.

    Args:
        mcgip: (E, 2) mined pairs over pool positions. labels: class per pool position.
        seed: draws (the training seed: each training run gets its own control graphs).
    """
    n = len(labels)
    count = int(mcgip.shape[0])
    rng = np.random.default_rng([seed, 7777])
    shuffled = rng.permutation(n)[mcgip] if count else mcgip.copy()
    random = _distinct_pairs([np.arange(n)], count, rng)
    lab = np.asarray(labels)
    groups = [np.flatnonzero(lab == c) for c in sorted(set(labels))]
    oracle = _distinct_pairs([g for g in groups if len(g) > 1], count, rng)
    return {
        name: PairSet(p, pair_precision(p, labels))
        for name, p in (("shuffled", shuffled), ("random", random), ("oracle", oracle))
    }


# ---- gaze-centred crops -------------------------------------------------------------------------


def gaze_centres(
    noisy: dict[str, list[NDArray[np.float64]]], k: int, side: int, gen_size: int
) -> NDArray[np.float64]:
    """(n, k, 2) crop centres (x, y px) per pool position: the longest fixations of all readers.

    Centres are taken in order of fixation duration, skipping any closer than ``side / 2`` to one
    already chosen (so the k crops show different fixated regions); a case with fewer distinct
    regions repeats its longest one. Centres are clamped so a ``side`` crop fits in the image.
    """
    readers = list(noisy)
    n = len(noisy[readers[0]])
    out = np.zeros((n, k, 2))
    lo, hi = side / 2, gen_size - side / 2
    for pos in range(n):
        fix = np.concatenate([noisy[r][pos] for r in readers if noisy[r][pos].size] or [np.zeros((0, 3))])
        chosen: list[NDArray[np.float64]] = []
        for row in fix[np.argsort(-fix[:, 2], kind="stable")] if fix.size else []:
            xy = np.clip(row[:2], lo, hi)
            if all(np.hypot(*(xy - c)) >= side / 2 for c in chosen):
                chosen.append(xy)
            if len(chosen) == k:
                break
        if not chosen:
            chosen = [np.array([gen_size / 2, gen_size / 2])]
        out[pos] = [chosen[j] if j < len(chosen) else chosen[0] for j in range(k)]
    return out


def random_centres(n: int, k: int, side: int, gen_size: int, seed: int) -> NDArray[np.float64]:
    """(n, k, 2) uniformly random crop centres (what a pre-training without gaze can pick)."""
    rng = np.random.default_rng([seed, 5151])
    return rng.uniform(side / 2, gen_size - side / 2, size=(n, k, 2))


def tile_centres(gen_size: int, side: int) -> NDArray[np.float64]:
    """(T, 2) centres of ``side`` tiles covering the image with half-tile overlap (evaluation views)."""
    steps = np.arange(side / 2, gen_size - side / 2 + 1e-9, side / 2)
    return np.array([(x, y) for y in steps for x in steps], dtype=np.float64)


def write_crops(
    cases: Sequence[SyntheticCase], indices: Sequence[int], centres: NDArray[np.float64], side: int, out: Path
) -> list[Path]:
    """Write the ``side`` x ``side`` native-resolution crops ``centres[i, j]`` of ``cases[indices[i]]``.

    Returns:
        The PNG paths, case-major (crop j of position i at ``i * k + j``).
    """
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, idx in enumerate(indices):
        image = cases[idx].image
        for j, (cx, cy) in enumerate(centres[i]):
            x0, y0 = round(cx - side / 2), round(cy - side / 2)
            path = out / f"c{idx:05d}-{j:02d}.png"
            Image.fromarray(image[y0 : y0 + side, x0 : x0 + side].astype(np.uint16)).save(path)
            paths.append(path)
    return paths


def crop_edges(case_pairs: IntPairs, n: int, k: int) -> IntPairs:
    """Crop-level positives: the k crops of a case with each other, crop j of a with crop j of b."""
    own = [(i * k + a, i * k + b) for i in range(n) for a in range(k) for b in range(a + 1, k)]
    across = [(int(a) * k + j, int(b) * k + j) for a, b in case_pairs.tolist() for j in range(k)]
    return np.array(own + across, dtype=np.int64).reshape(-1, 2)
