"""Seeded, resumable, rank-aware batch sampler."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler

_MIX = 0x9E3779B1  # odd constant to decorrelate (seed, epoch, index) -> augmentation seed


def augmentation_seed(seed: int, epoch: int, index: int) -> int:
    """Deterministic per-sample augmentation seed, different every epoch."""
    return (seed * 1_000_003 + epoch * _MIX + index * 7919) % (2**63 - 1)


class EpochBatchSampler(Sampler[list[tuple[int, int]]]):
    """Yields this rank's batches of ``(dataset_index, aug_seed)`` for one epoch from a start batch.

    Epoch ``e`` shuffles with ``torch.Generator().manual_seed(seed + e)``; global batch ``b`` is
    ``perm[b*B*W : (b+1)*B*W]`` and rank ``r`` takes its ``r``-th slice of ``B``. The tail that does not
    fill a global batch is dropped, so every rank sees the same number of batches and no case appears
    twice in a global batch. Resuming = constructing with the saved ``(epoch, start_batch)``.

    Args:
        n: dataset length. batch_size: per rank. seed, epoch: shuffle seed and epoch.
        rank, world_size: this process and the process count. start_batch: first batch to yield.
    """

    def __init__(
        self,
        n: int,
        batch_size: int,
        *,
        seed: int,
        epoch: int,
        rank: int = 0,
        world_size: int = 1,
        start_batch: int = 0,
    ) -> None:
        if batch_size * world_size > n:
            raise ValueError(
                f"global batch {batch_size}x{world_size} exceeds the {n} training cases; "
                "lower train.batch_size"
            )
        self.n, self.batch_size, self.seed, self.epoch = n, batch_size, seed, epoch
        self.rank, self.world_size, self.start_batch = rank, world_size, start_batch

    @staticmethod
    def batches_per_epoch(n: int, batch_size: int, world_size: int = 1) -> int:
        return n // (batch_size * world_size)

    def __len__(self) -> int:
        return max(0, self.batches_per_epoch(self.n, self.batch_size, self.world_size) - self.start_batch)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        perm = torch.randperm(self.n, generator=gen).tolist()
        global_batch = self.batch_size * self.world_size
        total = self.batches_per_epoch(self.n, self.batch_size, self.world_size)
        for b in range(self.start_batch, total):
            lo = b * global_batch + self.rank * self.batch_size
            yield [(i, augmentation_seed(self.seed, self.epoch, i)) for i in perm[lo : lo + self.batch_size]]
