"""Launching the trainer CLI and turning its JSON-lines output into job progress.

The trainer prints one JSON object per line (docs/trainer.md): ``run_start``, ``progress`` (every
``train.log_every`` steps), ``checkpoint``, ``run_end``, ``evaluate`` and ``done``. ``ProgressTracker``
maps them to an overall fraction (training runs share 85 %, evaluation and export the rest) and keeps
a bounded loss/lr history per run for the dashboard's curves.

The trainer's ``eta_s`` covers only the run it is in; the job still has the runs after it. The
tracker times the steps itself (wall clock between lines, so a resumed run and the trainer's own
warm-up are both counted) and reports ``eta_s`` for all training left, ``None`` once training is
over (evaluation has no step count to extrapolate from). A run's first progress line starts its
clock, so the estimate appears from its second line on.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from server.worker.context import JobContext
from trainer.contract import (
    CheckpointEvent,
    DoneEvent,
    EvaluateEvent,
    ProgressEvent,
    RunEnd,
    RunStart,
    parse_event,
)

logger = logging.getLogger(__name__)

#: Points kept per run in ``progress_info["history"]`` (older points are thinned, never dropped all).
HISTORY_POINTS = 400
TRAIN_SHARE = 0.85
_CKPT = re.compile(r"^step-(\d{8})\.pt$")


def planned_runs(config: dict[str, Any]) -> list[str]:
    """Training runs the trainer will do for ``config`` (validated TrainConfig dict), in order."""
    gaze = config.get("gaze", {}).get("enabled", True)
    baseline = config.get("evaluation", {}).get("baseline", "train")
    if not gaze:
        return ["baseline"]
    return ["mcgip", "baseline"] if baseline == "train" else ["mcgip"]


def latest_checkpoint_step(run_dir: Path) -> int:
    """Step of the newest checkpoint under ``run_dir/checkpoints`` (0 when none)."""
    folder = run_dir / "checkpoints"
    if not folder.is_dir():
        return 0
    steps = [int(m.group(1)) for p in folder.iterdir() if (m := _CKPT.match(p.name))]
    return max(steps, default=0)


def visible_gpus() -> int:
    """GPUs this host can use, without importing torch (CUDA_VISIBLE_DEVICES, else nvidia-smi)."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return len([d for d in env.split(",") if d.strip() and d.strip() != "-1"])
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return 0
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return 0
    return sum(1 for line in out.splitlines() if line.startswith("GPU "))


def train_command(ctx: JobContext, args: list[str], *, device: str) -> list[str]:
    """The argv of a training run: plain, or under torchrun with one process per GPU."""
    base = ctx.options.trainer_command(sys.executable)
    gpus = ctx.options.gpus if ctx.options.gpus is not None else visible_gpus()
    if device != "cpu" and gpus > 1 and not ctx.options.train_command:
        python = ctx.options.python or sys.executable
        return [
            python,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc-per-node={gpus}",
            "-m",
            "trainer.api",
            *args,
        ]
    return [*base, *args]


class ProgressTracker:
    """Parses trainer output lines and reports progress through a ``JobContext``."""

    def __init__(self, ctx: JobContext, runs: list[str], clock: Callable[[], float] = time.monotonic) -> None:
        self.ctx = ctx
        self.runs = runs
        self.done_info: dict[str, Any] | None = None
        self._clock = clock
        # (time, step) of the current run's first progress line: its mean seconds per step since.
        self._run_origin: tuple[float, int] | None = None
        info = ctx.info()
        raw_history = info.get("history") or {}
        self.history: dict[str, list[list[float]]] = {
            str(run): [list(map(float, point)) for point in points] for run, points in raw_history.items()
        }

    def _fraction(self, run: str, step: int, total: int) -> float:
        index = self.runs.index(run) if run in self.runs else 0
        within = step / total if total > 0 else 0.0
        return TRAIN_SHARE * (index + min(1.0, within)) / max(1, len(self.runs))

    def _record(self, run: str, step: int, loss: float, lr: float) -> None:
        points = [p for p in self.history.get(run, []) if p[0] < step]  # a resumed run repeats steps
        points.append([float(step), float(loss), float(lr)])
        if len(points) > HISTORY_POINTS:
            points = points[:-1:2] + [points[-1]]  # thin evenly, keep the newest point
        self.history[run] = points

    def _eta(self, run: str, step: int, total: int) -> float | None:
        """Seconds of training left in the job: this run's steps and every later run's (same budget)."""
        if self._run_origin is None:
            self._run_origin = (self._clock(), step)
            return None
        started, first = self._run_origin
        if step <= first:
            return None
        per_step = (self._clock() - started) / (step - first)
        later = len(self.runs) - 1 - self.runs.index(run) if run in self.runs else 0
        return per_step * (max(0, total - step) + later * total)

    def _record_evaluation(self, metrics: dict[str, Any]) -> list[dict[str, Any]]:
        """Evaluation points of the finished runs: ``{"metric", "run", "step", "value"}``.

        ``metrics`` is the done event's side-by-side table (metric -> run -> value); each run's point
        sits at its last step so the dashboard can draw it beside that run's curves.
        """
        points = []
        for name, row in sorted(metrics.items()):
            if not isinstance(row, dict):
                continue
            for run, value in sorted(row.items()):
                if isinstance(value, int | float) and run in self.history and self.history[run]:
                    step = self.history[run][-1][0]
                    points.append({"metric": name, "run": run, "step": step, "value": float(value)})
        return points

    def handle(self, line: str) -> None:
        """One stdout line of the trainer (events: ``trainer.contract``; anything else goes to the log)."""
        event = parse_event(line)
        if event is None:
            self.ctx.append_output(line.strip())
        elif isinstance(event, ProgressEvent):
            run = event.run
            self._record(run, event.step, event.loss, event.lr)
            self.ctx.report(
                self._fraction(run, event.step, event.total_steps),
                phase="train",
                run=run,
                step=event.step,
                total_steps=event.total_steps,
                loss=event.loss,
                lr=event.lr,
                epoch=event.epoch,
                images_per_s=event.images_per_s,
                positives_per_step=event.positives_per_step,
                eta_s=self._eta(run, event.step, event.total_steps),
                history=self.history,
            )
        elif isinstance(event, RunStart):
            # The run's clock starts at its first progress line: a resumed run starts mid-way.
            self._run_origin = None
            self.ctx.report(
                self._fraction(event.run, 0, 1),
                phase="train",
                run=event.run,
                total_steps=event.total_steps,
                eta_s=None,
            )
            self.ctx.log(f"run {event.run} started ({event.total_steps} steps)")
        elif isinstance(event, CheckpointEvent):
            self.ctx.report(checkpoint={"run": event.run, "step": event.step})
        elif isinstance(event, RunEnd):
            self.ctx.report(self._fraction(event.run, 1, 1), phase="train", run=event.run)
            summary = {k: v for k, v in event.model_dump().items() if k != "event"}
            self.ctx.log(f"run {event.run} finished: {json.dumps(summary)}")
        elif isinstance(event, EvaluateEvent):
            self.ctx.report(TRAIN_SHARE + 0.03, phase="evaluate", eta_s=None)
            self.ctx.log("evaluating " + ", ".join(event.models))
        elif isinstance(event, DoneEvent):
            self.done_info = event.model_dump()
            self.ctx.report(
                0.9,
                phase="evaluated",
                metrics=event.metrics,
                evaluations=self._record_evaluation(event.metrics),
                eta_s=None,
            )
        else:
            self.ctx.append_output(line.strip())
