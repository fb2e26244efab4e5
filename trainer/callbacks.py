"""Progress reporting: callbacks and the JSON-lines stream the worker parses."""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Progress:
    """One progress record (every ``train.log_every`` optimizer steps and at the end).

    Attributes:
        run: ``"mcgip"`` or ``"baseline"``. step: optimizer steps done. total_steps: budget.
        epoch: current epoch (0-based). loss: mean loss over the steps since the last record.
        lr: current learning rate. positives_per_step: mean gaze positives used per step.
        images_per_s: training images (cases x 2 views counted once per case) per second, all ranks.
        eta_s: estimated seconds until this run's last step.
    """

    run: str
    step: int
    total_steps: int
    epoch: int
    loss: float
    lr: float
    positives_per_step: float
    images_per_s: float
    eta_s: float


class Callback:
    """Base class with no-op hooks; override the ones you need."""

    def on_run_start(self, run: str, total_steps: int) -> None:
        """A training run (mcgip or baseline) starts or resumes."""

    def on_progress(self, progress: Progress) -> None:
        """A progress record."""

    def on_checkpoint(self, run: str, step: int, path: Path) -> None:
        """A checkpoint was written."""

    def on_run_end(self, run: str, info: dict[str, Any]) -> None:
        """A run finished (``info``: steps, seconds, final loss)."""

    def on_event(self, event: str, info: dict[str, Any]) -> None:
        """Other phases: ``evaluate``, ``export``, ``done``."""


class JsonLinesCallback(Callback):
    """Writes one JSON object per line, flushed immediately (``{"event": "progress", ...}``).

    Args:
        stream: an open text stream (default stdout) or None when ``path`` is given.
        path: append to this file instead.
    """

    def __init__(self, stream: IO[str] | None = None, path: str | Path | None = None) -> None:
        self._file = open(path, "a", encoding="utf-8") if path is not None else None  # noqa: SIM115
        self._stream = self._file or stream or sys.stdout

    def _emit(self, record: dict[str, Any]) -> None:
        self._stream.write(json.dumps(record, sort_keys=True) + "\n")
        self._stream.flush()

    def on_run_start(self, run: str, total_steps: int) -> None:
        self._emit({"event": "run_start", "run": run, "total_steps": total_steps})

    def on_progress(self, progress: Progress) -> None:
        self._emit({"event": "progress", **asdict(progress)})

    def on_checkpoint(self, run: str, step: int, path: Path) -> None:
        self._emit({"event": "checkpoint", "run": run, "step": step, "path": str(path)})

    def on_run_end(self, run: str, info: dict[str, Any]) -> None:
        self._emit({"event": "run_end", "run": run, **info})

    def on_event(self, event: str, info: dict[str, Any]) -> None:
        self._emit({"event": event, **info})

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


class LoggingCallback(Callback):
    """Progress through ``logging`` (INFO)."""

    def on_progress(self, progress: Progress) -> None:
        logger.info(
            "%s step %d/%d loss %.4f lr %.3g pos/step %.1f %.1f img/s eta %.0fs",
            progress.run,
            progress.step,
            progress.total_steps,
            progress.loss,
            progress.lr,
            progress.positives_per_step,
            progress.images_per_s,
            progress.eta_s,
        )


class CallbackList(Callback):
    """Fans every hook out to several callbacks."""

    def __init__(self, callbacks: list[Callback]) -> None:
        self.callbacks = list(callbacks)

    def on_run_start(self, run: str, total_steps: int) -> None:
        for cb in self.callbacks:
            cb.on_run_start(run, total_steps)

    def on_progress(self, progress: Progress) -> None:
        for cb in self.callbacks:
            cb.on_progress(progress)

    def on_checkpoint(self, run: str, step: int, path: Path) -> None:
        for cb in self.callbacks:
            cb.on_checkpoint(run, step, path)

    def on_run_end(self, run: str, info: dict[str, Any]) -> None:
        for cb in self.callbacks:
            cb.on_run_end(run, info)

    def on_event(self, event: str, info: dict[str, Any]) -> None:
        for cb in self.callbacks:
            cb.on_event(event, info)
