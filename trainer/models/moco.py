"""MoCo v2 with gaze positives in the queue (McGIP)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from trainer import distributed
from trainer.losses.infonce import multi_positive_infonce
from trainer.losses.positives import GazePositives
from trainer.models.backbone import build_backbone
from trainer.models.base import ContrastiveMethod
from trainer.models.heads import mlp
from trainer.models.momentum import ema_update, frozen_copy


class MoCo(ContrastiveMethod):
    """Query encoder + MLP head, momentum key encoder, and a queue of keys with their case indices.

    Logits are ``[q.k+ | q.queue] / T``; the positive mask is ``L = [1 | G]`` where ``G[i, j]`` says
    queue entry ``j`` belongs to a gaze partner of case ``i`` (or to case ``i`` itself).
    The queue keeps each entry's case index (-1 while empty), so ``G`` is one lookup per step.

    Args:
        backbone: torchvision ResNet name. proj_hidden_dim, proj_dim: head widths.
        queue_size: K. temperature: T. momentum: key encoder EMA. symmetric: also swap the views.
        positives: gaze positives provider.
    """

    queue: torch.Tensor
    queue_idx: torch.Tensor
    queue_ptr: torch.Tensor

    def __init__(
        self,
        *,
        backbone: str,
        proj_hidden_dim: int,
        proj_dim: int,
        queue_size: int,
        temperature: float,
        momentum: float,
        symmetric: bool,
        positives: GazePositives,
    ) -> None:
        super().__init__(positives)
        self.encoder, feat = build_backbone(backbone)
        self.projector = mlp(feat, proj_hidden_dim, proj_dim, batch_norm=False)  # MoCo v2 head: no BN
        self.key_encoder = frozen_copy(self.encoder)
        self.key_projector = frozen_copy(self.projector)
        self.temperature, self.momentum, self.symmetric = temperature, momentum, symmetric
        self.register_buffer("queue", F.normalize(torch.randn(queue_size, proj_dim), dim=1))
        self.register_buffer("queue_idx", torch.full((queue_size,), -1, dtype=torch.long))
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))

    def _query(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.projector(self.encoder(x)), dim=1)

    @torch.no_grad()
    def _key(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.key_projector(self.key_encoder(x)), dim=1)

    def _loss(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        case_idx: torch.Tensor,
        queue: torch.Tensor,
        queue_idx: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        q = q.float()
        logits = torch.cat([(q * k.float()).sum(1, keepdim=True), q @ queue.T], dim=1)  # (B, 1 + K)
        gaze = self.positives.mask(case_idx, queue_idx)  # (B, K)
        ones = torch.ones(q.shape[0], 1, dtype=torch.bool, device=q.device)
        loss = multi_positive_infonce(logits, torch.cat([ones, gaze], dim=1), self.temperature)
        return loss, gaze.sum()

    def forward(
        self, view1: torch.Tensor, view2: torch.Tensor, case_idx: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # Snapshot the queue: it is updated in place below, before backward needs it.
        queue, queue_idx = self.queue.clone(), self.queue_idx.clone()
        k2 = self._key(view2)
        loss, positives = self._loss(self._query(view1), k2, case_idx, queue, queue_idx)
        keys = [k2]
        if self.symmetric:
            k1 = self._key(view1)
            loss2, positives2 = self._loss(self._query(view2), k1, case_idx, queue, queue_idx)
            loss, positives = (loss + loss2) / 2, positives + positives2
            keys.append(k1)
        for k in keys:
            self._enqueue(distributed.gather_nograd(k.float()), distributed.gather_nograd(case_idx))
        return loss, positives

    @torch.no_grad()
    def _enqueue(self, keys: torch.Tensor, idx: torch.Tensor) -> None:
        """Write (N, D) keys and their (N,) case indices at the pointer, wrapping around."""
        size = self.queue.shape[0]
        n = min(keys.shape[0], size)
        slots = (self.queue_ptr + torch.arange(n, device=keys.device)) % size
        self.queue[slots] = keys[-n:].to(self.queue.dtype)
        self.queue_idx[slots] = idx[-n:]
        self.queue_ptr.copy_((self.queue_ptr + n) % size)

    def after_step(self, progress: float) -> None:
        ema_update(self.key_encoder, self.encoder, self.momentum)
        ema_update(self.key_projector, self.projector, self.momentum)
