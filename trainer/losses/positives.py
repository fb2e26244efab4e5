"""Gaze positives for one training step: pair lookup, GzPT dropping and the baseline's identity."""

from __future__ import annotations

import torch

from trainer.losses.mask import PairLookup, drop_positives


class GazePositives:
    """Builds the positive masks a method needs; ``lookup=None`` gives the no-gaze baseline.

    Dropping uses a device generator re-seeded from ``(seed, step, micro)`` before every micro-batch,
    so it is reproducible and resumes exactly without storing generator state.

    Args:
        lookup: pair lookup over training-case indices, or None for the baseline.
        drop_prob: probability of dropping each gaze positive (GzPT).
        seed: run seed.
        device: training device.
    """

    def __init__(
        self,
        lookup: PairLookup | None,
        *,
        drop_prob: float = 0.0,
        seed: int = 0,
        device: torch.device | str = "cpu",
    ) -> None:
        self.lookup = lookup
        self.drop_prob = drop_prob
        self.seed = seed
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(seed)

    @property
    def enabled(self) -> bool:
        return self.lookup is not None

    def set_step(self, step: int, micro: int = 0) -> None:
        """Re-seed the dropping generator for optimizer step ``step``, micro-batch ``micro``."""
        self.generator.manual_seed((self.seed * 1_000_003 + step * 1024 + micro) % (2**63 - 1))

    def mask(self, rows: torch.Tensor, cols: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        """Positives between ``rows`` (B,) and ``cols`` (K,) case indices.

        Args:
            rows: (B,) int64 case indices (negative = none).
            cols: (K,) int64 case indices (negative = none).
            keep: (B, K) bool positives that are always present and never dropped (same image).

        Returns:
            (B, K) bool: ``keep`` | (gaze positives after dropping); ``keep`` alone for the baseline.
        """
        if self.lookup is None:
            if keep is not None:
                return keep
            return torch.zeros(rows.shape[0], cols.shape[0], dtype=torch.bool, device=rows.device)
        gaze = drop_positives(self.lookup.lookup(rows, cols), self.drop_prob, self.generator, keep)
        return gaze | keep if keep is not None else gaze
