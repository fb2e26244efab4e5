"""Multi-positive NT-Xent (SimCLR with gaze positives, supervised-contrastive style)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def multi_positive_ntxent(
    anchors: torch.Tensor,
    candidates: torch.Tensor,
    positives: torch.Tensor,
    self_mask: torch.Tensor,
    temperature: float,
) -> torch.Tensor:
    """SupCon-style loss: per anchor, the mean over its positives of ``-log softmax``, then mean over anchors.

    For anchor ``a`` with positive set ``P(a)`` and candidates ``k != a``::

        loss_a = -1/|P(a)| * sum_{p in P(a)} log( exp(s_ap / T) / sum_{k != a} exp(s_ak / T) )

    With ``P(a)`` = {other view of the same image} this is SimCLR's NT-Xent.

    Args:
        anchors: (A, D) embeddings of this process's views.
        candidates: (C, D) embeddings of all views (all processes), containing the anchors.
        positives: (A, C) bool, excluding the anchor itself.
        self_mask: (A, C) bool, True where candidate == anchor (removed from the denominator).
        temperature: T > 0.

    Returns:
        Scalar loss.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0 (got {temperature})")
    a = F.normalize(anchors.float(), dim=1)
    c = F.normalize(candidates.float(), dim=1)
    logits = (a @ c.T / temperature).masked_fill(self_mask, float("-inf"))
    log_prob = F.log_softmax(logits, dim=1).masked_fill(self_mask, 0.0)
    weights = (positives & ~self_mask).to(log_prob.dtype)
    per_anchor = -(weights * log_prob).sum(1) / weights.sum(1).clamp(min=1.0)
    return per_anchor.mean()
