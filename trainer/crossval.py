"""Cross-validated evaluation of trained encoders (torch side of :mod:`trainer.protocol`).

Embeds every labelled snapshot case with each encoder (its own input settings, one fixed view),
keys each case by the sha256 of its decoded pixels, and hands the frozen features to the
torch-free protocol: the same content-keyed folds, probes and bootstrap resamples for every
condition (McGIP, baseline, the untrained starting point, the previous version, controls).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from trainer.config import EvalConfig
from trainer.data.snapshot import Snapshot
from trainer.evaluate import embed
from trainer.export import load_encoder
from trainer.imaging import spec_from_encoder_info
from trainer.protocol import EvaluationConfig, ProbeConfig, check_labels, content_key, evaluate_conditions

logger = logging.getLogger(__name__)


def image_key(path: Path) -> str:
    """Content key of an image file: sha256 of its decoded pixel values (not its bytes)."""
    with Image.open(path) as img:
        return content_key(np.asarray(img))


def protocol_config(config: EvalConfig, *, baseline: str = "baseline") -> EvaluationConfig:
    """The protocol settings of a training config's ``evaluation`` section."""
    return EvaluationConfig(
        folds=config.folds,
        resamples=config.resamples,
        seed=config.cv_seed,
        repeats=config.cv_repeats,
        baseline=baseline,
        primary_metric=config.primary_metric,
        probes=ProbeConfig(
            knn_k=config.knn_k, knn_temperature=config.knn_temperature, linear_c=config.linear_c
        ),
    )


def labelled_cases(snapshot: Snapshot) -> list[int]:
    """Store indices (positions in ``snapshot.cases``) of labelled cases."""
    return [i for i, c in enumerate(snapshot.cases) if c.label is not None]


def cross_validate(
    encoders: Mapping[str, Path],
    snapshot: Snapshot,
    store: Any,
    config: EvalConfig,
    *,
    device: torch.device,
    keys: list[str] | None = None,
) -> dict[str, Any]:
    """The evaluation report (:mod:`trainer.protocol.report`) of every encoder on the snapshot.

    Args:
        encoders: condition name -> encoder.pt.
        snapshot: cases with resolved labels and optional patient keys.
        store: the snapshot's ``ImageStore`` (store index = position in ``snapshot.cases``).
        config: evaluation settings.
        device: where to embed.
        keys: content keys of the labelled cases, when already computed (else read from the files).
    """
    rows = labelled_cases(snapshot)
    labels = [snapshot.cases[i].label for i in rows]
    groups = [snapshot.cases[i].group for i in rows]
    cfg = protocol_config(config)
    grouped = bool(rows) and all(g is not None for g in groups)
    group_keys = [str(g) for g in groups] if grouped else None
    if not rows or not check_labels(labels, cfg.folds, group_keys).ok:
        # Nothing worth embedding: the protocol's report says exactly what is missing.
        every = [c.label for c in snapshot.cases]
        return evaluate_conditions({}, every, ["" for _ in every], config=cfg)
    keys = keys if keys is not None else [image_key(snapshot.cases[i].image) for i in rows]
    features: dict[str, np.ndarray] = {}
    for name, path in encoders.items():
        encoder, info = load_encoder(path)
        encoder.to(device)
        spec = spec_from_encoder_info(info)
        feats = embed(encoder, store, spec, rows, device=device, batch_size=config.batch_size)
        features[name] = feats.numpy().astype(np.float64)
    return evaluate_conditions(
        features,
        labels,
        keys,
        classes=list(snapshot.classes),
        groups=group_keys,
        config=cfg,
    )
