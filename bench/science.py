"""Benchmark: does gaze make the encoder better? (``mcgip bench science``)

Protocol. For every data seed a synthetic data set (``trainer.synthetic``, 4 classes, realistic
finding size unless swept) is split, stratified by class, into a pre-training pool and an
evaluation pool. Simulated readers read the pool; each fixation gets Gaussian gaze error in
degrees of visual angle; pairs are mined per reader with the product's session similarity and
top-k partners. For every training seed five pre-trainings share the config, the initial weights
and the augmentation stream and differ only in their positive pairs:

- ``baseline``: no gaze (instance discrimination only);
- ``mcgip``: the mined gaze pairs;
- ``shuffled``: the mined graph with case ids permuted;
- ``random``: as many uniformly random pairs;
- ``oracle``: as many random same-label pairs (upper bound: every pair right).

The evaluation pool (never seen in pre-training) is embedded by every encoder and scored with
``trainer.protocol``: content-hash stratified 5-fold cross-validation with the same folds for every
condition, kNN and logistic probes fitted on training folds only, case-level bootstrap CIs and the
paired difference to the baseline. Effects are pooled as the mean McGIP - baseline difference of
the primary metric (kNN balanced accuracy, points) over training seeds within a data seed, then
over data seeds with a t interval (data seeds are the independent units).

Sweeps are one factor at a time around the default point (noise 1 deg, 2 readers, 100% labelled,
moments similarity, realistic findings): gaze noise, readers and similarity metric retrain McGIP
only (the baseline is shared); the labelled fraction re-scores the same encoders with that share
of the evaluation pool labelled; finding size regenerates the data (baseline, McGIP, shuffled).
Sweep points use the first ``--sweep-train-seeds`` training seeds of every data seed.

Targets at realistic finding size: McGIP >= baseline + 5 points with the pooled 95% CI above 0;
shuffled and random <= baseline + 1 point; McGIP pair precision >= 2x shuffled.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import multiprocessing
import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.science_data import (
    READERS,
    CaseSet,
    build_cases,
    control_pairs,
    crop_edges,
    gaze_centres,
    mine_pairs,
    noisy_fixations,
    random_centres,
    simulate_fixations,
    tile_centres,
    write_crops,
)
from bench.science_report import (
    FACTORS,
    markdown_table,
    pool_effects,
    print_summary,
    targets,
    write_figure,
)
from trainer.callbacks import Callback
from trainer.config import TrainConfig
from trainer.crossval import image_key
from trainer.data.sampler import EpochBatchSampler
from trainer.data.snapshot import make_snapshot
from trainer.evaluate import embed
from trainer.export import load_encoder
from trainer.imaging import spec_from_encoder_info
from trainer.pipeline import PreparedData, initial_method, prepare_data, train_one
from trainer.protocol import EvaluationConfig, assign_folds, evaluate_conditions
from trainer.synthetic.images import CLASSES

CONFIGS = Path(__file__).resolve().parents[1] / "trainer" / "configs"
CONDITIONS = ("baseline", "mcgip", "shuffled", "random", "oracle")
PRIMARY = "knn.balanced_accuracy"
#: Finding size levels: (scale, contrast) multipliers of the generator.
FINDING = {"realistic": (1.0, 1.0), "enlarged": (4.0, 2.0)}
DEFAULT_POINT: dict[str, Any] = {
    "noise_deg": 1.0,
    "readers": 2,
    "labelled": 1.0,
    "metric": "moments",
    "finding": "realistic",
}
FULL_SWEEPS: dict[str, list[Any]] = {
    "noise_deg": [0.5, 1.0, 2.0, 4.0],
    "readers": [1, 2, 4],
    "labelled": [0.1, 1.0],
    "metric": ["moments", "dhash"],
    "finding": ["realistic", "enlarged"],
}
QUICK_SWEEPS: dict[str, list[Any]] = {
    "noise_deg": [1.0, 4.0],
    "readers": [1, 2],
    "labelled": [0.1, 1.0],
    "metric": ["moments"],
    "finding": ["realistic", "enlarged"],
}

logger = logging.getLogger(__name__)


# ---- training -----------------------------------------------------------------------------------


def run_config(base: TrainConfig, *, seed: int, gaze: bool) -> TrainConfig:
    """``base`` with training seed ``seed``; gaze positives on or off (pairs come pre-shuffled)."""
    data = base.to_dict()
    data["train"]["seed"] = seed
    data["gaze"]["enabled"] = gaze
    data["gaze"]["shuffle"] = False
    data["evaluation"]["baseline"] = "none"
    return TrainConfig.from_dict(data)


def weights_digest(config: TrainConfig, prepared: PreparedData) -> str:
    """sha256 of the encoder's initial weights for ``config`` (what training starts from)."""
    method = initial_method(config, prepared, torch.device("cpu"))
    h = hashlib.sha256()
    for name, tensor in sorted(method.encoder.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def augmentation_digest(config: TrainConfig, n: int) -> str:
    """sha256 of the first epoch's (case, augmentation seed) stream the training loop draws."""
    sampler = EpochBatchSampler(n, config.train.batch_size, seed=config.train.seed, epoch=0)
    return hashlib.sha256(json.dumps(list(sampler)).encode()).hexdigest()[:16]


def _edges(pairs: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(pairs, dtype=torch.long).reshape(-1, 2)


def train_condition(
    base: TrainConfig, prepared: PreparedData, pairs: np.ndarray | None, seed: int, run_dir: Path
) -> tuple[Path, dict[str, Any]]:
    """Pre-train one condition (``pairs`` None: the no-gaze baseline); returns (encoder.pt, facts)."""
    config = run_config(base, seed=seed, gaze=pairs is not None)
    cond = dataclasses.replace(
        prepared, edges=_edges(pairs) if pairs is not None else _edges(np.zeros((0, 2)))
    )
    facts = {
        "init_weights": weights_digest(config, cond),
        "augmentation": augmentation_digest(config, len(cond.train_cases)),
        "pairs": 0 if pairs is None else int(pairs.shape[0]),
    }
    t = time.perf_counter()
    _, path = train_one(
        config, cond, run_dir, run="mcgip" if pairs is not None else "baseline",
        callbacks=Callback(), device=torch.device("cpu"), resume=False,
    )  # fmt: skip
    facts["train_s"] = time.perf_counter() - t
    return path, facts


def features_of(path: Path, prepared: PreparedData, rows: Sequence[int]) -> np.ndarray:
    """(len(rows), F) frozen features of the evaluation cases (the encoder's own input settings)."""
    encoder, info = load_encoder(path)
    feats = embed(
        encoder, prepared.store, spec_from_encoder_info(info), list(rows), device=torch.device("cpu")
    )
    return feats.numpy().astype(np.float64)


#: (base config, data, pairs or None, training seed, run folder, evaluation rows, rows per case).
Job = tuple[TrainConfig, PreparedData, np.ndarray | None, int, Path, list[int], int]


def train_and_embed(job: Job) -> tuple[np.ndarray, dict[str, Any]]:
    """One pre-training and the frozen features of the evaluation cases (runs in a worker process).

    With ``rows per case`` T > 1 the rows are T tiles per case (case-major) and a case's feature is
    the element-wise maximum over its tiles' features (a finding in any tile shows).
    """
    base, prepared, pairs, seed, run_dir, rows, tiles = job
    path, info = train_condition(base, prepared, pairs, seed, run_dir)
    t = time.perf_counter()
    feats = features_of(path, prepared, rows)
    feats = feats.reshape(len(rows) // tiles, tiles, -1).max(axis=1)
    info["embed_s"] = time.perf_counter() - t
    return feats, info


def init_worker(threads: int) -> None:
    """Worker processes: ``threads`` intra-op threads each (workers x threads = the cores)."""
    torch.set_num_threads(threads)


def run_jobs(pool: Executor | None, jobs: list[Job]) -> list[tuple[np.ndarray, dict[str, Any]]]:
    """Results of ``jobs`` in order: in ``pool`` when given (independent runs in parallel), else here.

    Small encoders on a few cores scale badly with intra-op threads (two threads gave about 1.2x on
    a 32 px ResNet-18 step), so independent pre-trainings in single-threaded processes use the
    cores better; every run's result depends only on its job, not on where it ran.
    """
    if pool is None:
        return [train_and_embed(job) for job in jobs]
    return list(pool.map(train_and_embed, jobs))


# ---- evaluation ---------------------------------------------------------------------------------


def labelled_subset(labels: Sequence[str], fraction: float, k: int, seed: int) -> list[str | None]:
    """Labels with only ``fraction`` of every class kept (at least ``k`` per class), the rest None."""
    if fraction >= 1.0:
        return list(labels)
    rng = np.random.default_rng([seed, 4242])
    out: list[str | None] = [None] * len(labels)
    for name in sorted(set(labels)):
        members = [i for i, y in enumerate(labels) if y == name]
        keep = max(k, round(fraction * len(members)))
        for i in rng.choice(members, size=min(keep, len(members)), replace=False):
            out[int(i)] = name
    return out


def summarise_report(report: dict[str, Any]) -> dict[str, Any]:
    """The parts of a protocol report the bench keeps per run (primary metric and accuracy)."""
    keep = (PRIMARY, "knn.accuracy", "linear.balanced_accuracy")
    return {
        "status": report["status"],
        "problems": report.get("problems", []),
        "n_cases": report["n_cases"],
        "n_folds": report["n_folds"],
        "conditions": {c: {m: v[m] for m in keep if m in v} for c, v in report["conditions"].items()},
        "differences": {c: {m: v[m] for m in keep if m in v} for c, v in report["differences"].items()},
        "verdicts": {c: v["verdict"] for c, v in report.get("verdicts", {}).items()},
    }


def evaluate(
    features: dict[str, np.ndarray],
    labels: Sequence[str],
    keys: Sequence[str],
    fraction: float,
    cfg: EvaluationConfig,
    seed: int,
) -> dict[str, Any]:
    """Protocol report of every condition on the evaluation pool with ``fraction`` labelled."""
    lab = labelled_subset(labels, fraction, cfg.folds, seed)
    report = evaluate_conditions(features, lab, keys, classes=sorted(set(labels)), config=cfg)
    out = summarise_report(report)
    rows = [i for i, y in enumerate(lab) if y is not None]
    folds = assign_folds([keys[i] for i in rows], [str(lab[i]) for i in rows], cfg.folds, seed=cfg.seed)
    out["labelled"] = fraction
    out["folds"] = {"cases": [keys[i][:12] for i in rows], "fold": folds.tolist()}
    return out


# ---- one data set -------------------------------------------------------------------------------


@dataclasses.dataclass
class Setup:
    """Everything fixed for a run of the bench."""

    base: TrainConfig
    n_cases: int
    gen_size: int
    store_size: int
    classes: tuple[str, ...]
    top_k: int
    data_seeds: int
    train_seeds: int
    sweep_train_seeds: int
    sweeps: dict[str, list[Any]]
    eval_cfg: EvaluationConfig
    root: Path
    views: str = "full"
    crop_side: int = 32
    crops_per_case: int = 4


def gaze_variants(sweeps: dict[str, list[Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(name, mining point) of every McGIP variant: the default, then the swept gaze factors."""
    out = [("mcgip", dict(DEFAULT_POINT))]
    for factor in ("noise_deg", "readers", "metric"):
        for level in sweeps.get(factor, []):
            if level != DEFAULT_POINT[factor]:
                out.append((f"mcgip@{factor}={level}", {**DEFAULT_POINT, factor: level}))
    return out


@dataclasses.dataclass
class CropViews:
    """Native-resolution crop views of one data set (``--views crops``).

    Pre-training sees ``k`` crops per pool case instead of the downsampled image: around the
    longest fixations for the gaze conditions (``mcgip`` and its sweep variants, ``oracle``), around
    another case's fixations for ``shuffled`` (a fixed permutation of the pool), and around random
    points for ``baseline`` and ``random``. The k crops of a case are positives of each other in
    every condition (what cropping gives without gaze); a condition's case pairs join crop j of one
    case with crop j of the other. Every condition is evaluated on the same tiles of the evaluation
    images (half-overlapping ``side`` tiles at native resolution, features max-pooled per case).
    """

    data: dict[str, PreparedData]
    n_pool: int
    tile_rows: list[int]
    tiles: int

    @staticmethod
    def build(
        setup: Setup,
        cases: CaseSet,
        variants: list[tuple[str, dict[str, Any]]],
        fixations: dict[str, list[np.ndarray]],
        root: Path,
        data_seed: int,
    ) -> CropViews:
        """Write the crops of every centre source and the evaluation tiles; prepare each data set."""
        side, k, gen = setup.crop_side, setup.crops_per_case, setup.gen_size
        ppd = gen / READERS[0].image_deg
        n = len(cases.pretrain)
        centres: dict[str, np.ndarray] = {"random": random_centres(n, k, side, gen, seed=data_seed)}
        for name, p in variants:
            readers = [r.name for r in READERS[: int(p["readers"])]]
            noisy = noisy_fixations(fixations, readers, float(p["noise_deg"]), ppd, seed=data_seed)
            centres[name] = gaze_centres(noisy, k, side, gen)
        perm = np.random.default_rng([data_seed, 6161]).permutation(n)
        centres["shuffled"] = centres["mcgip"][perm]
        tiles = tile_centres(gen, side)
        tile_paths = write_crops(
            cases.cases, cases.evaluate, np.repeat(tiles[None], len(cases.evaluate), 0), side, root / "tiles"
        )
        tile_items = [
            (f"tile-{p.stem}", p, cases.labels[cases.evaluate[i // len(tiles)]])
            for i, p in enumerate(tile_paths)
        ]
        data = {}
        for source, c in centres.items():
            paths = write_crops(cases.cases, cases.pretrain, c, side, root / f"crops-{source}")
            items = [(f"crop-{p.stem}", p, cases.labels[cases.pretrain[i // k]]) for i, p in enumerate(paths)]
            snapshot = make_snapshot([*items, *tile_items], [], classes=sorted(set(cases.labels)))
            snapshot = dataclasses.replace(
                snapshot,
                cases=tuple(
                    dataclasses.replace(sc, split="train" if i < len(items) else "test")
                    for i, sc in enumerate(snapshot.cases)
                ),
            )
            data[source] = prepare_data(setup.base, snapshot)
        start = n * k
        return CropViews(data, n, list(range(start, start + len(tile_paths))), len(tiles))

    def job(self, setup: Setup, name: str, pairs: np.ndarray | None, seed: int, root: Path) -> Job:
        """The pre-training job of condition ``name`` (case pairs ``pairs``; None: no case pairs)."""
        source = name if name in self.data else ("random" if name in ("baseline", "random") else "mcgip")
        case_pairs = pairs if pairs is not None else np.zeros((0, 2), dtype=np.int64)
        edges = crop_edges(case_pairs, self.n_pool, setup.crops_per_case)
        run_dir = root / f"run-{seed}-{name}"
        return (setup.base, self.data[source], edges, seed, run_dir, self.tile_rows, self.tiles)


def run_data_set(setup: Setup, data_seed: int, finding: str, pool: Executor | None) -> list[dict[str, Any]]:
    """All training runs and evaluations of one data set; one record per (training seed, labelled)."""
    scale, contrast = FINDING[finding]
    t0 = time.perf_counter()
    root = setup.root / f"data-{finding}-{data_seed}"
    cases: CaseSet = build_cases(
        root,
        n=setup.n_cases,
        seed=data_seed,
        gen_size=setup.gen_size,
        store_size=setup.store_size,
        classes=setup.classes,
        finding_scale=scale,
        finding_contrast=contrast,
    )
    pool_labels = [cases.labels[i] for i in cases.pretrain]
    default = finding == DEFAULT_POINT["finding"]
    variants = gaze_variants(setup.sweeps) if default else [("mcgip", dict(DEFAULT_POINT))]
    n_readers = max(int(p["readers"]) for _, p in variants)
    fixations = simulate_fixations(cases.cases, cases.pretrain, READERS[:n_readers], seed=data_seed)
    ppd = setup.gen_size / READERS[0].image_deg
    mined = {
        name: mine_pairs(
            {r.name: fixations[r.name] for r in READERS[: int(p["readers"])]},
            pool_labels,
            readers=[r.name for r in READERS[: int(p["readers"])]],
            noise_deg=float(p["noise_deg"]),
            pixels_per_degree=ppd,
            gen_size=setup.gen_size,
            metric=str(p["metric"]),
            top_k=setup.top_k,
            seed=data_seed,
        )
        for name, p in variants
    }
    data_s = time.perf_counter() - t0
    snapshot = make_snapshot(
        [(cid, path, label) for cid, path, label in zip(cases.ids, cases.paths, cases.labels, strict=True)],
        [],
        classes=sorted(set(cases.labels)),
    )
    evaluated = set(cases.evaluate)
    snapshot = dataclasses.replace(
        snapshot,
        cases=tuple(
            dataclasses.replace(c, split="test" if i in evaluated else "train")
            for i, c in enumerate(snapshot.cases)
        ),
    )
    prepared = prepare_data(setup.base, snapshot)
    if prepared.train_cases != cases.pretrain:
        raise RuntimeError("pre-training pool and training cases disagree")
    eval_labels = [cases.labels[i] for i in cases.evaluate]
    keys = [image_key(cases.paths[i]) for i in cases.evaluate]
    rows = list(cases.evaluate)
    crops = None
    if setup.views == "crops":
        crops = CropViews.build(setup, cases, variants, fixations, root, data_seed)
    seeds = setup.train_seeds if default else setup.sweep_train_seeds
    records: list[dict[str, Any]] = []
    for train_seed in range(seeds):
        controls = control_pairs(mined["mcgip"].pairs, pool_labels, seed=1000 * data_seed + train_seed)
        plan: dict[str, tuple[np.ndarray | None, float]] = {
            "baseline": (None, float("nan")),
            "mcgip": (mined["mcgip"].pairs, mined["mcgip"].precision),
        }
        if default:
            plan.update({name: (p.pairs, p.precision) for name, p in controls.items()})
            if train_seed < setup.sweep_train_seeds:
                plan.update({n: (m.pairs, m.precision) for n, m in mined.items() if n != "mcgip"})
        else:
            plan["shuffled"] = (controls["shuffled"].pairs, controls["shuffled"].precision)
        if crops is None:
            jobs: list[Job] = [
                (setup.base, prepared, pairs, train_seed, root / f"run-{train_seed}-{name}", rows, 1)
                for name, (pairs, _) in plan.items()
            ]
        else:
            jobs = [crops.job(setup, name, pairs, train_seed, root) for name, (pairs, _) in plan.items()]
        features: dict[str, np.ndarray] = {}
        facts: dict[str, dict[str, Any]] = {}
        for (name, (_, precision)), (feats, info) in zip(plan.items(), run_jobs(pool, jobs), strict=True):
            features[name] = feats
            info["pair_precision"] = None if np.isnan(precision) else precision
            facts[name] = info
            print(
                f"  data {data_seed} ({finding}) train seed {train_seed} {name:<26} "
                f"{info['pairs']:4d} pairs, precision {precision:5.2f}, {info['train_s']:.0f} s",
                flush=True,
            )
        fractions = setup.sweeps.get("labelled", [1.0]) if default else [1.0]
        for fraction in fractions:
            t = time.perf_counter()
            chosen = features if fraction == 1.0 else {c: features[c] for c in CONDITIONS if c in features}
            record = evaluate(chosen, eval_labels, keys, float(fraction), setup.eval_cfg, data_seed)
            record.update(
                data_seed=data_seed,
                train_seed=train_seed,
                finding=finding,
                runs=facts,
                data_s=data_s,
                eval_s=time.perf_counter() - t,
                pool={"pretrain": len(cases.pretrain), "evaluate": len(cases.evaluate)},
            )
            records.append(record)
    return records


# ---- command line -------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mcgip bench science", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=CONFIGS / "cpu_synthetic.json")
    parser.add_argument(
        "--cases", type=int, default=320, help="cases per data set (half pre-train, half evaluate)"
    )
    parser.add_argument("--data-seeds", type=int, default=5)
    parser.add_argument("--train-seeds", type=int, default=3)
    parser.add_argument(
        "--sweep-train-seeds", type=int, default=1, help="training seeds of every sweep point"
    )
    parser.add_argument("--gen-size", type=int, default=128, help="side the cases and gaze are simulated at")
    parser.add_argument("--store-size", type=int, default=64, help="side of the stored PNGs")
    parser.add_argument("--image-size", type=int, default=32, help="encoder input side (data.image_size)")
    parser.add_argument("--steps", type=int, default=60, help="optimizer steps of every pre-training")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--top-k", type=int, default=3, help="gaze partners per case")
    parser.add_argument("--classes", default=",".join(CLASSES), help="comma list of generator classes")
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples per CI")
    parser.add_argument(
        "--repeats", type=int, default=3, help="repetitions of the cross-validation per evaluation"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="pre-trainings run in parallel (processes; 1: in this process)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        help="intra-op threads per run (default: cores / workers; 1 on a busy machine)",
    )
    parser.add_argument(
        "--views",
        choices=("full", "crops"),
        default="full",
        help="what pre-training sees: the whole image, or native-resolution crops (gaze-centred with gaze)",
    )
    parser.add_argument("--crop-side", type=int, default=32, help="crop and evaluation tile side (px)")
    parser.add_argument("--crops-per-case", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="smaller run (prints what it reduces)")
    parser.add_argument(
        "--no-sweeps", action="store_true", help="default point only (the labelled-fraction re-scoring stays)"
    )
    parser.add_argument("--workdir", type=Path, help="keep data and runs here (default: temporary)")
    parser.add_argument("--json", type=Path, default=Path("science.json"), help="figures as JSON")
    parser.add_argument("--figure", type=Path, default=Path("science.png"), help="effect plot (PNG)")
    parser.add_argument("--markdown", type=Path, default=Path("science.md"), help="result table (Markdown)")
    return parser


def _apply_quick(args: argparse.Namespace) -> list[str]:
    """Shrink the run for ``--quick``; returns one line per reduction."""
    reduced = {
        "data_seeds": 3, "train_seeds": 1, "cases": 200, "gen_size": 96, "store_size": 48,
        "image_size": 32, "steps": 40, "batch_size": 16,
    }  # fmt: skip
    lines = []
    for name, value in reduced.items():
        if getattr(args, name) > value:
            lines.append(f"{name.replace('_', '-')} {getattr(args, name)} -> {value}")
            setattr(args, name, value)
    for factor, levels in QUICK_SWEEPS.items():
        if levels != FULL_SWEEPS[factor]:
            lines.append(f"{factor} sweep {FULL_SWEEPS[factor]} -> {levels}")
    return lines


def build_setup(args: argparse.Namespace, root: Path, sweeps: dict[str, list[Any]]) -> Setup:
    data = TrainConfig.from_file(args.config).to_dict()
    data["data"].update(image_size=args.image_size, load_size=round(args.image_size * 1.125))
    data["train"].update(steps=args.steps, batch_size=args.batch_size, checkpoint_every=10**6)
    data["optim"]["warmup_steps"] = min(data["optim"].get("warmup_steps", 0), args.steps // 5)
    return Setup(
        base=TrainConfig.from_dict(data),
        n_cases=args.cases,
        gen_size=args.gen_size,
        store_size=args.store_size,
        classes=tuple(args.classes.split(",")),
        top_k=args.top_k,
        data_seeds=args.data_seeds,
        train_seeds=args.train_seeds,
        sweep_train_seeds=min(args.sweep_train_seeds, args.train_seeds),
        sweeps=sweeps,
        eval_cfg=EvaluationConfig(resamples=args.resamples, repeats=args.repeats, primary_metric=PRIMARY),
        root=root,
        views=args.views,
        crop_side=args.crop_side,
        crops_per_case=args.crops_per_case,
    )


@contextmanager
def worker_pool(workers: int, threads: int | None) -> Iterator[Executor | None]:
    """``workers`` spawned processes sharing the cores (None for 1: run in this process).

    Each run uses ``threads`` intra-op threads (default: the cores divided among the workers).
    """
    threads = threads or max(1, (os.cpu_count() or 1) // max(workers, 1))
    if workers <= 1:
        torch.set_num_threads(threads)
        yield None
        return
    ctx = multiprocessing.get_context("spawn")  # fork after torch's thread pool started can hang
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=init_worker, initargs=(threads,)) as pool:
        yield pool


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    sweeps = {k: list(v) for k, v in FULL_SWEEPS.items()}
    if args.quick:
        sweeps = {k: list(v) for k, v in QUICK_SWEEPS.items()}
        print("quick run, reduced: " + "; ".join(_apply_quick(args)))
    if args.no_sweeps:
        sweeps = {k: (v if k == "labelled" else [DEFAULT_POINT[k]]) for k, v in sweeps.items()}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, worker_pool(args.workers, args.threads) as pool:
        root = args.workdir or Path(tmp)
        setup = build_setup(args, root, sweeps)
        cfg = setup.base
        print(
            f"science: {setup.data_seeds} data seeds x {setup.train_seeds} training seeds "
            f"(sweeps: {setup.sweep_train_seeds}), {setup.n_cases} cases of {len(setup.classes)} classes "
            f"at {setup.gen_size} px (stored {setup.store_size} px), {cfg.method.name} "
            f"{cfg.model.backbone} {cfg.data.image_size} px, batch {cfg.train.batch_size}, "
            f"{cfg.train.steps} steps, top-{setup.top_k} gaze partners, {args.workers} worker(s)",
            flush=True,
        )
        records: list[dict[str, Any]] = []
        for finding in sweeps["finding"]:
            for data_seed in range(setup.data_seeds):
                records += run_data_set(setup, data_seed, finding, pool)
    pooled = pool_effects(records, sweeps, DEFAULT_POINT, PRIMARY)
    verdicts = targets(pooled, records)
    train_s = [r["train_s"] for rec in records for r in rec["runs"].values() if rec["labelled"] == 1.0]
    figures: dict[str, Any] = {
        "protocol": __doc__,
        "config": cfg.to_dict(),
        "setup": {
            "cases": setup.n_cases,
            "gen_size": setup.gen_size,
            "store_size": setup.store_size,
            "classes": list(setup.classes),
            "top_k": setup.top_k,
            "data_seeds": setup.data_seeds,
            "train_seeds": setup.train_seeds,
            "sweep_train_seeds": setup.sweep_train_seeds,
            "sweeps": sweeps,
            "default_point": DEFAULT_POINT,
            "primary_metric": PRIMARY,
            "quick": bool(args.quick),
            "workers": args.workers,
            "views": setup.views,
            "crop_side": setup.crop_side,
            "crops_per_case": setup.crops_per_case,
            "factors": list(FACTORS),
        },  # fmt: skip
        "records": records,
        "pooled": pooled,
        "targets": verdicts,
        "timing": {
            "total_s": time.perf_counter() - started,
            "training_runs": len(train_s),
            "train_s_mean": float(np.mean(train_s)) if train_s else None,
        },
    }
    args.json.write_text(json.dumps(figures, indent=2, default=float))
    write_figure(pooled, sweeps, DEFAULT_POINT, args.figure)
    args.markdown.write_text(markdown_table(pooled, figures))
    print_summary(pooled, verdicts, figures)
    print(f"wrote {args.json}, {args.figure}, {args.markdown}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
