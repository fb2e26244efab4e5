"""The training loop: knows optimisers, schedules, devices and checkpoints, not the method.

A method is any ``ContrastiveMethod``: ``forward(view1, view2, case_idx) -> (loss, positives)`` plus
``before_step``/``after_step`` hooks. Everything else (progress, checkpoints) goes through callbacks.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from trainer import distributed
from trainer.callbacks import Callback, Progress
from trainer.checkpoint import capture_rng, latest_checkpoint, load_checkpoint, restore_rng, save_checkpoint
from trainer.config import LoopConfig, OptimConfig
from trainer.data.dataset import TwoViewDataset
from trainer.data.sampler import EpochBatchSampler
from trainer.models.base import ContrastiveMethod
from trainer.schedule import warmup_cosine

logger = logging.getLogger(__name__)


@dataclass
class LoopState:
    """Position of the run: optimizer steps done and the next batch of the current epoch."""

    step: int = 0
    epoch: int = 0
    batch: int = 0
    elapsed_s: float = 0.0
    losses: list[float] = field(default_factory=list)  # mean loss per optimizer step


@dataclass(frozen=True)
class LoopResult:
    """What a finished run reports."""

    run: str
    steps: int
    elapsed_s: float
    losses: list[float]
    checkpoint: Path | None
    resumed_from: int


def build_optimizer(method: torch.nn.Module, config: OptimConfig) -> torch.optim.Optimizer:
    """SGD (momentum) or AdamW over the trainable parameters."""
    params = [p for p in method.parameters() if p.requires_grad]
    if config.name == "sgd":
        return torch.optim.SGD(
            params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
        )
    return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)


def resolve_device(name: str) -> torch.device:
    """``auto`` -> this rank's CUDA device when available, else CPU."""
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise RuntimeError("train.device is 'cuda' but no CUDA device is available")
    return torch.device("cuda", distributed.current().local_rank % torch.cuda.device_count())


class TrainingLoop:
    """Runs ``config.steps`` optimizer steps of ``method`` over ``dataset``.

    Args:
        method: the model with its loss (already on ``device``).
        dataset: two-view training dataset.
        loop: budget, batch, accumulation, AMP and checkpoint settings.
        optim: optimiser and schedule settings.
        run: run name reported in progress (``"mcgip"`` / ``"baseline"``).
        checkpoint_dir: where checkpoints go (None: no checkpoints, no resume).
        callbacks: progress sink.
        device: training device.
        num_workers: DataLoader workers.
        meta: extra entries stored in every checkpoint (config, snapshot counts...).
    """

    def __init__(
        self,
        *,
        method: ContrastiveMethod,
        dataset: TwoViewDataset,
        loop: LoopConfig,
        optim: OptimConfig,
        run: str,
        checkpoint_dir: Path | None,
        callbacks: Callback,
        device: torch.device,
        num_workers: int = 0,
        meta: dict[str, Any] | None = None,
    ) -> None:
        self.method, self.dataset, self.cfg, self.run_name = method, dataset, loop, run
        self.checkpoint_dir, self.callbacks, self.device = checkpoint_dir, callbacks, device
        self.num_workers, self.meta = num_workers, dict(meta or {})
        self.dist = distributed.current()
        self.optimizer = build_optimizer(method, optim)
        self.scheduler = warmup_cosine(
            self.optimizer, total=loop.steps, warmup=optim.warmup_steps, min_ratio=optim.min_lr_ratio
        )
        cuda = device.type == "cuda"
        self.amp_dtype: torch.dtype | None = None
        if loop.amp and cuda:
            self.amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.channels_last = loop.channels_last and cuda
        if self.channels_last:
            method.to(memory_format=torch.channels_last)
        self.model: torch.nn.Module = method
        if self.dist.world_size > 1:
            # Queues and BN statistics are kept per rank; the queue is identical everywhere anyway
            # because every rank enqueues the same gathered keys.
            self.model = DistributedDataParallel(
                method, device_ids=[device.index] if cuda else None, broadcast_buffers=False
            )
        self.state = LoopState()

    # ----------------------------------------------------------------- checkpoints
    def _state_dict(self) -> dict[str, Any]:
        return {
            "format": "mcgip-train-checkpoint",
            "run": self.run_name,
            "step": self.state.step,
            "epoch": self.state.epoch,
            "batch": self.state.batch,
            "elapsed_s": self.state.elapsed_s,
            "losses": list(self.state.losses),
            "method": self.method.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": capture_rng(),
            "meta": self.meta,
        }

    def _load(self, path: Path) -> None:
        ckpt = load_checkpoint(path, self.device)
        self.method.load_state_dict(ckpt["method"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.scaler.load_state_dict(ckpt["scaler"])
        restore_rng(ckpt["rng"])
        self.state = LoopState(
            ckpt["step"], ckpt["epoch"], ckpt["batch"], ckpt["elapsed_s"], list(ckpt["losses"])
        )
        logger.info("%s: resumed from %s (step %d)", self.run_name, path, self.state.step)

    def _save(self) -> Path | None:
        path = None
        if self.checkpoint_dir is not None and self.dist.is_main:
            path = save_checkpoint(
                self.checkpoint_dir, self.state.step, self._state_dict(), keep=self.cfg.keep_checkpoints
            )
            self.callbacks.on_checkpoint(self.run_name, self.state.step, path)
        distributed.barrier()
        return path

    # ----------------------------------------------------------------- training
    def _loader(self) -> DataLoader[Any]:
        sampler = EpochBatchSampler(
            len(self.dataset),
            self.cfg.batch_size,
            seed=self.cfg.seed,
            epoch=self.state.epoch,
            rank=self.dist.rank,
            world_size=self.dist.world_size,
            start_batch=self.state.batch,
        )
        return DataLoader(
            self.dataset,
            batch_sampler=sampler,
            num_workers=self.num_workers,
            pin_memory=self.device.type == "cuda",
        )

    def _to_device(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def _forward_backward(
        self, batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor], micro: int
    ) -> tuple[float, float]:
        v1, v2, idx = self._to_device(batch[0]), self._to_device(batch[1]), batch[2].to(self.device)
        self.method.before_step(self.state.step, micro)
        last = micro == self.cfg.grad_accum - 1
        sync = (
            self.model.no_sync()
            if isinstance(self.model, DistributedDataParallel) and not last
            else contextlib.nullcontext()
        )
        autocast = (
            torch.autocast("cuda", dtype=self.amp_dtype)
            if self.amp_dtype is not None
            else contextlib.nullcontext()
        )
        with sync:
            with autocast:
                loss, positives = self.model(v1, v2, idx)
            self.scaler.scale(loss / self.cfg.grad_accum).backward()
        return float(loss.detach()), float(positives)

    def _optimizer_step(self) -> None:
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        self.state.step += 1
        self.method.after_step(self.state.step / self.cfg.steps)

    def run(self, resume: bool = True) -> LoopResult:
        """Train to ``loop.steps`` optimizer steps, resuming from the newest checkpoint if asked."""
        resumed_from = 0
        if resume and self.checkpoint_dir is not None:
            found = latest_checkpoint(self.checkpoint_dir)
            if found is not None:
                self._load(found)
                resumed_from = self.state.step
        self.model.train()
        self.callbacks.on_run_start(self.run_name, self.cfg.steps)
        last_ckpt: Path | None = None
        window: list[tuple[float, float]] = []
        window_start, images = time.perf_counter(), 0
        run_start_elapsed = self.state.elapsed_s
        t0 = time.perf_counter()
        micro, step_loss, step_pos = 0, 0.0, 0.0
        while self.state.step < self.cfg.steps:
            for batch in self._loader():
                loss, pos = self._forward_backward(batch, micro)
                self.state.batch += 1
                step_loss, step_pos, micro = step_loss + loss, step_pos + pos, micro + 1
                images += batch[2].shape[0] * self.dist.world_size
                if micro < self.cfg.grad_accum:
                    continue
                self._optimizer_step()
                self.state.losses.append(step_loss / micro)
                window.append((step_loss / micro, step_pos))
                micro, step_loss, step_pos = 0, 0.0, 0.0
                self.state.elapsed_s = run_start_elapsed + time.perf_counter() - t0
                done = self.state.step >= self.cfg.steps
                if self.state.step % self.cfg.log_interval == 0 or done:
                    self._report(window, images, time.perf_counter() - window_start)
                    window, window_start, images = [], time.perf_counter(), 0
                if self.state.step % self.cfg.checkpoint_every == 0 or done:
                    last_ckpt = self._save() or last_ckpt
                if done:
                    break
            else:
                self.state.epoch, self.state.batch = self.state.epoch + 1, 0
        if last_ckpt is None and self.checkpoint_dir is not None:
            last_ckpt = latest_checkpoint(self.checkpoint_dir)
        info = {"steps": self.state.step, "elapsed_s": round(self.state.elapsed_s, 3)}
        if self.state.losses:
            info["final_loss"] = self.state.losses[-1]
        self.callbacks.on_run_end(self.run_name, info)
        return LoopResult(
            self.run_name,
            self.state.step,
            self.state.elapsed_s,
            list(self.state.losses),
            last_ckpt,
            resumed_from,
        )

    def _report(self, window: list[tuple[float, float]], images: int, seconds: float) -> None:
        stats = torch.tensor([sum(w[0] for w in window), sum(w[1] for w in window)], dtype=torch.float64)
        stats = distributed.all_reduce_mean(stats.to(self.device)).cpu()
        n = max(1, len(window))
        rate = images / seconds if seconds > 0 else 0.0
        remaining = self.cfg.steps - self.state.step
        per_step = seconds / n if window else 0.0
        if self.dist.is_main:
            self.callbacks.on_progress(
                Progress(
                    run=self.run_name,
                    step=self.state.step,
                    total_steps=self.cfg.steps,
                    epoch=self.state.epoch,
                    loss=float(stats[0]) / n,
                    lr=float(self.optimizer.param_groups[0]["lr"]),
                    positives_per_step=float(stats[1]) / n * self.dist.world_size,
                    images_per_s=rate,
                    eta_s=remaining * per_step,
                )
            )
