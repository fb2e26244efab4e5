"""Glue between a snapshot, a config and the loop: data preparation, one training run, evaluation."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from trainer import distributed
from trainer.callbacks import Callback
from trainer.checkpoint import seed_everything
from trainer.config import EvalConfig, TrainConfig
from trainer.data.augment import resolve, train_transform
from trainer.data.dataset import ImageStore, TwoViewDataset
from trainer.data.pairs import pair_edges, shuffle_edges
from trainer.data.snapshot import Snapshot
from trainer.evaluate import LabelledSplit, embed, evaluate_features
from trainer.export import load_encoder, save_encoder
from trainer.imaging import PreprocessSpec, spec_from_encoder_info
from trainer.loop import LoopResult, TrainingLoop
from trainer.losses.mask import PairLookup
from trainer.losses.positives import GazePositives
from trainer.models.base import ContrastiveMethod
from trainer.models.factory import build_method

logger = logging.getLogger(__name__)


@dataclass
class PreparedData:
    """Images of every case, which of them train, and the labelled split for evaluation.

    Attributes:
        store: decoded images of all snapshot cases (store index = position in ``snapshot.cases``).
        train_cases: store indices used for pre-training (training-case index = position here).
        edges: (E, 2) gaze pairs between training-case indices.
        split: labelled train/test cases for kNN and the linear probe.
    """

    snapshot: Snapshot
    store: ImageStore
    train_cases: list[int]
    edges: torch.Tensor
    split: LabelledSplit


def prepare_data(config: TrainConfig, snapshot: Snapshot) -> PreparedData:
    """Select training cases, map pair ids to training indices, and build the labelled split."""
    data = config.data
    load_size = data.load_size or max(data.image_size, round(data.image_size * 1.15))
    store = ImageStore(
        [c.image for c in snapshot.cases],
        load_size=load_size,
        intensity=data.intensity,
        cache=data.cache_images,
        inverts=[c.invert for c in snapshot.cases],
    )
    train_cases = [i for i, c in enumerate(snapshot.cases) if c.split == "train" or data.train_on_test_images]
    index = {snapshot.cases[s].id: t for t, s in enumerate(train_cases)}
    edges = pair_edges(snapshot.pairs, index, min_score=config.gaze.min_score)
    class_of = {name: k for k, name in enumerate(snapshot.classes)}
    tr = [
        (i, class_of[c.label])
        for i, c in enumerate(snapshot.cases)
        if c.label is not None and c.split == "train"
    ]
    te = [
        (i, class_of[c.label])
        for i, c in enumerate(snapshot.cases)
        if c.label is not None and c.split == "test"
    ]
    split = LabelledSplit(
        [i for i, _ in tr], [y for _, y in tr], [i for i, _ in te], [y for _, y in te], snapshot.classes
    )
    return PreparedData(snapshot, store, train_cases, edges, split)


def snapshot_info(snapshot: Snapshot) -> dict[str, Any]:
    """Counts and gaze settings recorded with every encoder and model card."""
    return {"counts": snapshot.counts, "gaze": snapshot.gaze}


def encoder_info(config: TrainConfig, prepared: PreparedData, run: str) -> dict[str, Any]:
    """What ``encoder.pt`` records next to the weights: input settings, config, run name, data counts."""
    return {
        "backbone": config.model.backbone,
        "image_size": config.data.image_size,
        "normalize": {"mean": config.data.mean, "std": config.data.std},
        "preprocessing": PreprocessSpec(
            size=config.data.image_size,
            intensity=config.data.intensity,
            mean=config.data.mean,
            std=config.data.std,
        ).to_dict(),
        "config": config.to_dict(),
        "run": run,
        "snapshot": snapshot_info(prepared.snapshot),
        "gaze_edges": int(prepared.edges.shape[0]) if config.gaze.enabled else 0,
    }


def build_positives(config: TrainConfig, prepared: PreparedData, device: torch.device) -> GazePositives:
    """Gaze positives for ``config`` (None lookup when gaze is disabled: the baseline)."""
    if not config.gaze.enabled:
        return GazePositives(None, seed=config.train.seed, device=device)
    n = len(prepared.train_cases)
    edges = prepared.edges
    if config.gaze.shuffle:
        edges = shuffle_edges(edges, n, config.train.seed)
    lookup = PairLookup(edges, n, include_self=True, dense_limit=config.gaze.dense_limit, device=device)
    return GazePositives(lookup, drop_prob=config.gaze.drop_prob, seed=config.train.seed, device=device)


def initial_method(config: TrainConfig, prepared: PreparedData, device: torch.device) -> ContrastiveMethod:
    """The method ``config`` trains, at its seeded starting weights, on ``device``.

    Seeding comes first and the gaze positives draw nothing from the global generator, so McGIP,
    its baseline and the shuffled control of one seed all start from the same weights.
    """
    seed_everything(config.train.seed)
    return build_method(config, build_positives(config, prepared, device)).to(device)


def train_one(
    config: TrainConfig,
    prepared: PreparedData,
    run_dir: Path,
    *,
    run: str,
    callbacks: Callback,
    device: torch.device,
    resume: bool,
) -> tuple[LoopResult, Path]:
    """Train one method (McGIP or baseline) and write ``run_dir/encoder.pt`` (main rank).

    Returns:
        (loop result, path of encoder.pt).
    """
    if config.train.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    method = initial_method(config, prepared, device)
    if config.data.cache_images:
        prepared.store.preload()
    dataset = TwoViewDataset(
        prepared.store, train_transform(resolve(config.augment), config.data), indices=prepared.train_cases
    )
    info = encoder_info(config, prepared, run)
    loop = TrainingLoop(
        method=method,
        dataset=dataset,
        loop=config.train,
        optim=config.optim,
        run=run,
        checkpoint_dir=run_dir / "checkpoints",
        callbacks=callbacks,
        device=device,
        num_workers=config.data.num_workers,
        meta={k: v for k, v in info.items() if k not in ("backbone", "image_size", "normalize", "run")},
    )
    result = loop.run(resume=resume)
    encoder_path = run_dir / "encoder.pt"
    if distributed.current().is_main:
        save_encoder(encoder_path, method.encoder, {**info, "steps": result.steps, "losses": result.losses})
    distributed.barrier()
    return result, encoder_path


def save_untrained_encoder(config: TrainConfig, prepared: PreparedData, path: Path) -> Path:
    """Write the encoder that ``train_one`` starts from (same seed, same weights), untrained.

    Scoring it shows how much of a trained encoder's kNN accuracy comes from training at all: the
    features of a randomly initialised ResNet already separate findings that shift global image
    statistics, and a short pre-training can stay at that level.
    """
    baseline = config.without_gaze()
    method = initial_method(baseline, prepared, torch.device("cpu"))
    return save_encoder(path, method.encoder, {**encoder_info(baseline, prepared, "untrained"), "steps": 0})


def evaluate_encoder_file(
    path: Path, prepared: PreparedData, config: EvalConfig, *, device: torch.device, seed: int = 0
) -> dict[str, Any]:
    """kNN / linear-probe metrics of a saved encoder on the prepared split (its own input settings)."""
    encoder, info = load_encoder(path)
    encoder.to(device)
    spec = spec_from_encoder_info(info)
    split = prepared.split
    train_feats = embed(
        encoder, prepared.store, spec, split.train_indices, device=device, batch_size=config.batch_size
    )
    test_feats = embed(
        encoder, prepared.store, spec, split.test_indices, device=device, batch_size=config.batch_size
    )
    return evaluate_features(
        train_feats,
        test_feats,
        split,
        knn_k=config.knn_k,
        knn_temperature=config.knn_temperature,
        linear=config.linear_probe,
        probe_epochs=config.probe_epochs,
        probe_lr=config.probe_lr,
        probe_weight_decay=config.probe_weight_decay,
        seed=seed,
    )
