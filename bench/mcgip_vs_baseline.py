"""Benchmark: McGIP vs its no-gaze baseline vs shuffled gaze on synthetic data
(``mcgip bench mcgip-vs-baseline``).

Data: the demo generator's cases (``trainer.synthetic``) read by the simulated demo readers; each
session's fixations become gaze features and the pair graph is mined per reader with the paper's
heatmap-moment similarity (``trainer.gaze``), exactly as the product does for real readers.
Three pre-trainings with the same config, budget and seed: no-gaze baseline (reference, in this run),
McGIP, and McGIP on a shuffled pair graph (case ids permuted: same graph shape, pairs unrelated to
image content). Each encoder is scored by kNN on the snapshot's fixed held-out split, next to the
untrained encoder they all start from (how much of the score training adds at all).
Targets: McGIP >= baseline + 5 points kNN accuracy; shuffled within +-2 points of the baseline.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from trainer import api
from trainer.config import TrainConfig
from trainer.data.snapshot import load_snapshot, make_snapshot, save_snapshot
from trainer.gaze import MetricConfig, MiningConfig, PairMiner, compute_session_features
from trainer.loop import resolve_device
from trainer.pipeline import evaluate_encoder_file, prepare_data, save_untrained_encoder
from trainer.synthetic.images import CLASSES, generate_dataset
from trainer.synthetic.readers import DEMO_READERS, simulate_dataset_sessions

CONFIGS = Path(__file__).resolve().parents[1] / "trainer" / "configs"
VARIANTS = ("baseline", "mcgip", "shuffled")
ROWS = ("untrained", *VARIANTS)


def build_demo_snapshot(
    root: Path,
    *,
    cases: int,
    seed: int,
    gen_size: int,
    store_size: int,
    top_k: int | None,
    threshold: float,
    classes: Sequence[str] = CLASSES,
    finding_scale: float = 1.0,
    finding_contrast: float = 1.0,
) -> tuple[Path, dict[str, Any]]:
    """Generate cases, simulate every demo reader on every case, mine pairs, write PNGs + manifest.

    Returns:
        (manifest path, stats: counts, pairs per case, fraction of pairs with the same label).
    """
    data = generate_dataset(
        cases,
        seed=seed,
        size=gen_size,
        classes=classes,
        finding_scale=finding_scale,
        finding_contrast=finding_contrast,
    )
    sessions = simulate_dataset_sessions(data, DEMO_READERS, seed=seed)
    features = [
        compute_session_features(f"{reader}-{i}", f"case{i:05d}", reader, s.fixations, (gen_size, gen_size))
        for (reader, i), s in sessions.items()
    ]
    mining = MiningConfig(metric=MetricConfig(metric="moments"), top_k=top_k, threshold=threshold)
    pairs = PairMiner.from_features(features, mining).pair_graph().positives()
    labels = {f"case{i:05d}": c.label for i, c in enumerate(data)}
    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, case in enumerate(data):
        path = images / f"case{i:05d}.png"
        # 12-bit values kept in a 16-bit PNG, downsampled once to the stored size.
        img = Image.fromarray(case.image.astype(np.uint16)).resize(
            (store_size, store_size), Image.Resampling.BOX
        )
        img.save(path)
        rows.append((f"case{i:05d}", path, case.label))
    same = float(np.mean([labels[a] == labels[b] for a, b, _ in pairs])) if pairs else float("nan")
    snapshot = make_snapshot(
        rows,
        [(str(a), str(b), float(s)) for a, b, s in pairs],
        metadata={
            "counts": {"sessions": len(sessions), "readers": len(DEMO_READERS)},
            "gaze": {"metric": "moments", "top_k": top_k, "threshold": None if top_k else threshold},
        },
        split_seed=seed,
        test_fraction=0.3,
    )
    stats = {
        "cases": cases,
        "pairs": len(pairs),
        "pairs_per_case": 2 * len(pairs) / cases,
        "same_label": same,
        "test_cases": sum(case.split == "test" for case in snapshot.cases),
    }
    return save_snapshot(snapshot, root / "snapshot.json"), stats


def variant_config(base: TrainConfig, variant: str, seed: int) -> TrainConfig:
    """The base config as baseline / McGIP / shuffled-gaze McGIP with training seed ``seed``."""
    data = base.to_dict()
    data["train"]["seed"] = seed
    data["evaluation"]["baseline"] = "none"
    data["gaze"]["enabled"] = variant != "baseline"
    data["gaze"]["shuffle"] = variant == "shuffled"
    return TrainConfig.from_dict(data)


def untrained_knn(config: TrainConfig, manifest: Path, runs: Path) -> dict[str, float]:
    """kNN metrics of the encoder before its first step (the weights every variant starts from)."""
    prepared = prepare_data(config, load_snapshot(manifest))
    path = save_untrained_encoder(config, prepared, runs / f"untrained-{config.train.seed}" / "encoder.pt")
    report = evaluate_encoder_file(
        path,
        prepared,
        config.evaluation,
        device=resolve_device(config.train.device),
        seed=config.train.seed,
    )
    return dict(report["knn"])


def _record(
    results: dict[str, dict[str, list[float]]], row: str, seed: int, knn: dict[str, float], seconds: float
) -> None:
    """Append one run's kNN accuracy, macro AUC and duration to ``results[row]`` and report it."""
    results[row]["acc"].append(knn["accuracy"])
    results[row]["auc"].append(knn["macro_auc"])
    results[row]["s"].append(seconds)
    print(
        f"  seed {seed} {row:<9} kNN acc {100 * knn['accuracy']:5.1f}  "
        f"AUC {100 * knn['macro_auc']:5.1f}  ({seconds:.0f} s)",
        flush=True,
    )


def _mean_sd(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * statistics.mean(values):5.1f} +- {100 * sd:4.1f}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="mcgip bench mcgip-vs-baseline", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--config", type=Path, default=CONFIGS / "cpu_synthetic.json")
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--data-seed", type=int, default=0)
    parser.add_argument("--gen-size", type=int, default=128, help="side the cases and gaze are simulated at")
    parser.add_argument("--store-size", type=int, default=72, help="side of the stored PNGs")
    parser.add_argument("--top-k", type=int, default=5, help="gaze partners per case (0: use --threshold)")
    parser.add_argument("--threshold", type=float, default=0.9)
    parser.add_argument(
        "--classes",
        default="normal,round_mass",
        help=f"comma list of generator classes ({','.join(CLASSES)})",
    )
    parser.add_argument(
        "--finding-scale",
        type=float,
        default=4.0,
        help="finding size multiplier of the generator (1 = realistic)",
    )
    parser.add_argument(
        "--finding-contrast",
        type=float,
        default=2.0,
        help="finding contrast multiplier of the generator (1 = realistic)",
    )
    parser.add_argument("--steps", type=int, help="override train.steps")
    parser.add_argument("--workdir", type=Path, help="keep data and runs here (default: temporary)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    base = TrainConfig.from_file(args.config)
    if args.steps:
        base = TrainConfig.from_dict(
            {**base.to_dict(), "train": {**base.to_dict()["train"], "steps": args.steps}}
        )

    with tempfile.TemporaryDirectory() as tmp:
        root = args.workdir or Path(tmp)
        t0 = time.perf_counter()
        manifest, stats = build_demo_snapshot(
            root / "data",
            cases=args.cases,
            seed=args.data_seed,
            gen_size=args.gen_size,
            store_size=args.store_size,
            top_k=args.top_k or None,
            threshold=args.threshold,
            classes=tuple(args.classes.split(",")),
            finding_scale=args.finding_scale,
            finding_contrast=args.finding_contrast,
        )
        print(
            f"synthetic data: {stats['cases']} cases x {len(DEMO_READERS)} simulated readers, "
            f"{stats['pairs']} gaze pairs ({stats['pairs_per_case']:.1f} per case, "
            f"{100 * stats['same_label']:.0f}% same label), {stats['test_cases']} held out, "
            f"{time.perf_counter() - t0:.0f} s"
        )
        print(
            f"config {args.config.name}: {base.method.name} {base.model.backbone} {base.data.image_size}px, "
            f"batch {base.train.batch_size}, {base.train.steps} steps, seeds {args.seeds}"
        )
        results: dict[str, dict[str, list[float]]] = {v: {"acc": [], "auc": [], "s": []} for v in ROWS}
        for seed in range(args.seeds):
            t = time.perf_counter()
            untrained = untrained_knn(variant_config(base, "baseline", seed), manifest, root / "runs")
            _record(results, "untrained", seed, untrained, time.perf_counter() - t)
            for variant in VARIANTS:
                cfg = variant_config(base, variant, seed)
                t = time.perf_counter()
                res = api.train(cfg, manifest, root / "runs" / f"{variant}-{seed}", resume=False)
                main_run = "mcgip" if variant != "baseline" else "baseline"
                _record(results, variant, seed, res.metrics[main_run]["knn"], time.perf_counter() - t)
    base_acc = statistics.mean(results["baseline"]["acc"])
    print(f"{'variant':<10} {'kNN accuracy %':>16} {'kNN macro AUC %':>17} {'vs baseline':>12}")
    for variant in ROWS:
        r = results[variant]
        delta = 100 * (statistics.mean(r["acc"]) - base_acc)
        print(f"{variant:<10} {_mean_sd(r['acc']):>16} {_mean_sd(r['auc']):>17} {delta:+10.1f} pt")
    gain = 100 * (statistics.mean(results["mcgip"]["acc"]) - base_acc)
    shuffled = 100 * (statistics.mean(results["shuffled"]["acc"]) - base_acc)
    print(f"target McGIP >= baseline + 5 pt: {'PASS' if gain >= 5 else 'FAIL'} ({gain:+.1f} pt)")
    verdict = "PASS" if abs(shuffled) <= 2 else "FAIL"
    print(f"target shuffled within +-2 pt of baseline: {verdict} ({shuffled:+.1f} pt)")
    total = sum(sum(r["s"]) for r in results.values())
    print(f"training + evaluation time {total:.0f} s")
    if args.json:
        figures = {
            "data": stats,
            "config": base.to_dict(),
            "results": results,
            "gain_pt": gain,
            "shuffled_delta_pt": shuffled,
        }
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
