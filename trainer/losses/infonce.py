"""Multi-positive InfoNCE (MoCo with gaze positives in the queue)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def multi_positive_infonce(logits: torch.Tensor, positives: torch.Tensor, temperature: float) -> torch.Tensor:
    """``-sum(L * log_softmax(logits / T)) / sum(L)``, the McGIP MoCo loss with ``L = [1 | G]``.

    With exactly one positive per row (the key of the same image in column 0) this is the standard
    InfoNCE / cross-entropy loss with target 0. Extra positives (gaze partners in the queue) add
    their log-probabilities to the numerator and to the normaliser ``sum(L)``.

    Args:
        logits: (B, 1 + K) cosine similarities of each query with its own key then the queue.
        positives: (B, 1 + K) bool or float mask ``L``.
        temperature: softmax temperature ``T`` > 0.

    Returns:
        Scalar loss.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0 (got {temperature})")
    if logits.shape != positives.shape:
        raise ValueError(
            f"logits {tuple(logits.shape)} and positives {tuple(positives.shape)} differ in shape"
        )
    log_prob = F.log_softmax(logits.float() / temperature, dim=1)
    weights = positives.to(log_prob.dtype)
    return -(weights * log_prob).sum() / weights.sum().clamp(min=1.0)
