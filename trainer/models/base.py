"""Common interface of the self-supervised methods, as the training loop sees them."""

from __future__ import annotations

import torch
from torch import nn

from trainer.losses.positives import GazePositives


class ContrastiveMethod(nn.Module):
    """A method: ``forward(view1, view2, case_idx) -> (loss, gaze_positives)``.

    Attributes:
        encoder: the backbone that is evaluated and exported, (N, 1, H, W) -> (N, F).
        positives: gaze positives (``GazePositives(None)`` for the no-gaze baseline).
    """

    encoder: nn.Module

    def __init__(self, positives: GazePositives) -> None:
        super().__init__()
        self.positives = positives

    def forward(
        self, view1: torch.Tensor, view2: torch.Tensor, case_idx: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Loss for one micro-batch.

        Args:
            view1, view2: (B, 1, S, S) two augmentations of the same B cases.
            case_idx: (B,) int64 training-case indices (for the gaze lookup).

        Returns:
            (scalar loss, scalar count of gaze positives used beyond the same-image ones).
        """
        raise NotImplementedError

    def before_step(self, step: int, micro: int) -> None:
        """Called before each micro-batch of optimizer step ``step``."""
        self.positives.set_step(step, micro)

    def after_step(self, progress: float) -> None:
        """Called after each optimizer step; ``progress`` in [0, 1] (momentum updates)."""


def offset_identity(rows: int, cols: int, offset: int, device: torch.device) -> torch.Tensor:
    """(rows, cols) bool with True at (i, offset + i): this rank's samples inside a gathered batch."""
    out = torch.zeros(rows, cols, dtype=torch.bool, device=device)
    i = torch.arange(rows, device=device)
    out[i, i + offset] = True
    return out
