"""Cosine agreement averaged over all positives (BYOL and SimSiam with gaze positives)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def multi_positive_cosine(
    predictions: torch.Tensor, targets: torch.Tensor, positives: torch.Tensor
) -> torch.Tensor:
    """Mean cosine similarity over every positive (prediction, target) pair.

    BYOL's loss is ``2 - 2 * this`` and SimSiam's ``-this``. With ``positives`` the identity (each
    prediction paired only with the target of its own image) this is the standard per-sample mean;
    gaze positives add the pairs (i, j) of gaze-similar cases, all pairs weighted equally.

    Args:
        predictions: (B, D) online predictions.
        targets: (M, D) targets (already detached by the caller).
        positives: (B, M) bool mask.

    Returns:
        Scalar mean cosine similarity over the positive pairs.
    """
    if positives.shape != (predictions.shape[0], targets.shape[0]):
        raise ValueError(
            f"positives {tuple(positives.shape)} must be ({predictions.shape[0]}, {targets.shape[0]})"
        )
    p = F.normalize(predictions.float(), dim=1)
    z = F.normalize(targets.float(), dim=1)
    weights = positives.to(p.dtype)
    return ((p @ z.T) * weights).sum() / weights.sum().clamp(min=1.0)
