"""Build a method from the config."""

from __future__ import annotations

from trainer.config import TrainConfig
from trainer.losses.positives import GazePositives
from trainer.models.base import ContrastiveMethod
from trainer.models.byol import BYOL, SimSiam
from trainer.models.moco import MoCo
from trainer.models.simclr import SimCLR


def build_method(config: TrainConfig, positives: GazePositives) -> ContrastiveMethod:
    """The method named by ``config.method.name`` with its heads sized by ``config.model``."""
    m, mc = config.model, config.method
    if mc.name == "moco_v2":
        return MoCo(
            backbone=m.backbone,
            proj_hidden_dim=m.proj_hidden_dim,
            proj_dim=m.proj_dim,
            queue_size=mc.queue_size,
            temperature=mc.temperature,
            momentum=mc.momentum,
            symmetric=mc.symmetric,
            positives=positives,
        )
    if mc.name == "byol":
        return BYOL(
            backbone=m.backbone,
            proj_hidden_dim=m.proj_hidden_dim,
            proj_dim=m.proj_dim,
            pred_hidden_dim=m.pred_hidden_dim,
            momentum=mc.momentum,
            momentum_cosine=mc.momentum_cosine,
            positives=positives,
        )
    if mc.name == "simsiam":
        return SimSiam(
            backbone=m.backbone,
            proj_hidden_dim=m.proj_hidden_dim,
            proj_dim=m.proj_dim,
            pred_hidden_dim=m.pred_hidden_dim,
            positives=positives,
        )
    if mc.name == "simclr":
        return SimCLR(
            backbone=m.backbone,
            proj_hidden_dim=m.proj_hidden_dim,
            proj_dim=m.proj_dim,
            temperature=mc.temperature,
            positives=positives,
        )
    raise ValueError(f"unknown method {mc.name!r}")
