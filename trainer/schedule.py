"""Learning-rate schedule: linear warm-up then cosine decay, per optimizer step."""

from __future__ import annotations

import math

import torch
from torch.optim.lr_scheduler import LambdaLR


def warmup_cosine_factor(step: int, *, total: int, warmup: int, min_ratio: float) -> float:
    """Base-lr multiplier at ``step`` (0-based): ramps (step+1)/warmup, then cosine to ``min_ratio``."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    span = max(1, total - warmup)
    progress = min(1.0, (step - warmup) / span)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def warmup_cosine(optimizer: torch.optim.Optimizer, *, total: int, warmup: int, min_ratio: float) -> LambdaLR:
    """``LambdaLR`` over ``warmup_cosine_factor`` (its state dict resumes exactly)."""
    return LambdaLR(
        optimizer, lambda step: warmup_cosine_factor(step, total=total, warmup=warmup, min_ratio=min_ratio)
    )
