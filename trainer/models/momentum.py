"""Exponential moving average of parameters (MoCo key encoder, BYOL target)."""

from __future__ import annotations

import copy
import math

import torch
from torch import nn


def frozen_copy(module: nn.Module) -> nn.Module:
    """Deep copy with gradients off (the momentum branch is updated only by ``ema_update``)."""
    twin = copy.deepcopy(module)
    for p in twin.parameters():
        p.requires_grad_(False)
    return twin


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, momentum: float) -> None:
    """``target = momentum * target + (1 - momentum) * online`` for every parameter."""
    t: list[torch.Tensor] = list(target.parameters())
    o: list[torch.Tensor] = [p.detach() for p in online.parameters()]
    if len(t) != len(o):
        raise ValueError("target and online modules have different parameter lists")
    torch._foreach_lerp_(t, o, 1.0 - momentum)


def cosine_momentum(base: float, progress: float) -> float:
    """BYOL schedule: ``1 - (1 - base) * (cos(pi * progress) + 1) / 2``, from ``base`` to 1."""
    progress = min(max(progress, 0.0), 1.0)
    return 1.0 - (1.0 - base) * (math.cos(math.pi * progress) + 1.0) / 2.0
