"""SimCLR with gaze positives: supervised-contrastive-style multi-positive NT-Xent."""

from __future__ import annotations

import torch

from trainer import distributed
from trainer.losses.ntxent import multi_positive_ntxent
from trainer.losses.positives import GazePositives
from trainer.models.backbone import build_backbone
from trainer.models.base import ContrastiveMethod
from trainer.models.heads import mlp


class SimCLR(ContrastiveMethod):
    """Encoder + 2-layer projector; 2B anchors against the 2·W·B views of the whole global batch.

    Positives of an anchor: the other view of its image, plus both views of every gaze partner in
    the global batch. Candidates are gathered with gradients so every rank's negatives train.
    """

    def __init__(
        self,
        *,
        backbone: str,
        proj_hidden_dim: int,
        proj_dim: int,
        temperature: float,
        positives: GazePositives,
    ) -> None:
        super().__init__(positives)
        self.encoder, feat = build_backbone(backbone)
        self.projector = mlp(feat, proj_hidden_dim, proj_dim)
        self.temperature = temperature

    def forward(
        self, view1: torch.Tensor, view2: torch.Tensor, case_idx: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        b = case_idx.shape[0]
        z = self.projector(self.encoder(torch.cat([view1, view2]))).float()  # (2B, D): views 1 then 2
        z1, z2 = z[:b], z[b:]
        g1, g2 = distributed.gather_with_grad(z1), distributed.gather_with_grad(z2)
        all_idx = distributed.gather_nograd(case_idx)
        g = g1.shape[0]
        candidates = torch.cat([g1, g2])  # (2G, D)
        anchor_idx = torch.cat([case_idx, case_idx])
        cand_idx = torch.cat([all_idx, all_idx])
        # Anchor a sits at global position ``pos[a]``; its other view at ``pos[a] +- G``.
        local = torch.arange(b, device=z.device) + distributed.rank() * b
        pos = torch.cat([local, local + g])
        other = torch.cat([local + g, local])
        rows = torch.arange(2 * b, device=z.device)
        self_mask = torch.zeros(2 * b, 2 * g, dtype=torch.bool, device=z.device)
        self_mask[rows, pos] = True
        same_image = torch.zeros_like(self_mask)
        same_image[rows, other] = True
        positives = self.positives.mask(anchor_idx, cand_idx, same_image) & ~self_mask
        loss = multi_positive_ntxent(z, candidates, positives, self_mask, self.temperature)
        # Count gaze pairs once per (anchor case, partner case): 4 view combinations per pair.
        return loss, (positives & ~same_image).sum() // 4
