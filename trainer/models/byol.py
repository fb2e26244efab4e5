"""BYOL and SimSiam with gaze positives: the cosine loss averaged over every positive pair."""

from __future__ import annotations

import torch

from trainer import distributed
from trainer.losses.cosine import multi_positive_cosine
from trainer.losses.positives import GazePositives
from trainer.models.backbone import build_backbone
from trainer.models.base import ContrastiveMethod, offset_identity
from trainer.models.heads import mlp
from trainer.models.momentum import cosine_momentum, ema_update, frozen_copy


class _PredictiveMethod(ContrastiveMethod):
    """Shared forward: online predictions vs (stop-gradient) targets of the gathered batch."""

    def _branches(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 1, S, S) -> (online prediction (B, D), detached target (B, D))."""
        raise NotImplementedError

    def _agreement(
        self, view1: torch.Tensor, view2: torch.Tensor, case_idx: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean cosine (symmetrised over the two views) and the gaze-positive count."""
        p1, t1 = self._branches(view1)
        p2, t2 = self._branches(view2)
        z1 = distributed.gather_nograd(t1.float())
        z2 = distributed.gather_nograd(t2.float())
        all_idx = distributed.gather_nograd(case_idx)
        b = case_idx.shape[0]
        keep = offset_identity(b, all_idx.shape[0], distributed.rank() * b, case_idx.device)
        mask = self.positives.mask(case_idx, all_idx, keep)  # (B, W*B)
        agreement = (multi_positive_cosine(p1, z2, mask) + multi_positive_cosine(p2, z1, mask)) / 2
        return agreement, (mask & ~keep).sum()


class BYOL(_PredictiveMethod):
    """Online encoder + projector + predictor; EMA target encoder + projector. Loss ``2 - 2 cos``."""

    def __init__(
        self,
        *,
        backbone: str,
        proj_hidden_dim: int,
        proj_dim: int,
        pred_hidden_dim: int,
        momentum: float,
        momentum_cosine: bool,
        positives: GazePositives,
    ) -> None:
        super().__init__(positives)
        self.encoder, feat = build_backbone(backbone)
        self.projector = mlp(feat, proj_hidden_dim, proj_dim)
        self.predictor = mlp(proj_dim, pred_hidden_dim, proj_dim)
        self.target_encoder = frozen_copy(self.encoder)
        self.target_projector = frozen_copy(self.projector)
        self.base_momentum, self.momentum_cosine = momentum, momentum_cosine

    def _branches(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        prediction = self.predictor(self.projector(self.encoder(x)))
        with torch.no_grad():
            target = self.target_projector(self.target_encoder(x))
        return prediction, target

    def forward(
        self, view1: torch.Tensor, view2: torch.Tensor, case_idx: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        agreement, positives = self._agreement(view1, view2, case_idx)
        return 2.0 - 2.0 * agreement, positives

    def after_step(self, progress: float) -> None:
        m = cosine_momentum(self.base_momentum, progress) if self.momentum_cosine else self.base_momentum
        ema_update(self.target_encoder, self.encoder, m)
        ema_update(self.target_projector, self.projector, m)


class SimSiam(_PredictiveMethod):
    """Encoder + 3-layer projector + bottleneck predictor; stop-gradient targets. Loss ``-cos``."""

    def __init__(
        self,
        *,
        backbone: str,
        proj_hidden_dim: int,
        proj_dim: int,
        pred_hidden_dim: int,
        positives: GazePositives,
    ) -> None:
        super().__init__(positives)
        self.encoder, feat = build_backbone(backbone)
        self.projector = mlp(feat, proj_hidden_dim, proj_dim, layers=3, last_bn=True)
        self.predictor = mlp(proj_dim, pred_hidden_dim, proj_dim)

    def _branches(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.projector(self.encoder(x))
        return self.predictor(z), z.detach()  # stop-gradient on the target branch

    def forward(
        self, view1: torch.Tensor, view2: torch.Tensor, case_idx: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        agreement, positives = self._agreement(view1, view2, case_idx)
        return -agreement, positives
