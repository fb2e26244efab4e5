"""The trainer subprocess contract, one typed and versioned model for both sides (pydantic, no torch).

The worker starts ``python -m trainer.api <command> ...`` with the arguments of a request below
(:meth:`TrainRequest.args` ...), reads one JSON event per stdout line (:func:`parse_event`), and
after exit code 0 takes the files named by :class:`TrainOutputs`. ``trainer.api`` parses its command
line back into the same requests, and writes its lines from the same event models, so a change to
either side shows up in ``tests/trainer/test_contract.py``.

Exit codes: 0 done, 1 failed (worth a retry), 2 invalid config, snapshot or arguments (not worth one).

Version history: 1 - the lines and arguments as first released (events carry no version field;
lines written by version 1 trainers parse as version 1).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

CONTRACT_VERSION: Final = 1
EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_INVALID: Final = 2


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TrainRequest(_Request):
    """``train``: pre-train McGIP and its no-gaze baseline, evaluate, write the model card."""

    config: Path = Field(description="TrainConfig JSON/YAML file")
    snapshot: Path = Field(description="snapshot manifest (trainer.data.snapshot)")
    out: Path = Field(description="job folder: checkpoints, encoders, metrics, model card")
    resume: bool = Field(True, description="continue from checkpoints found in out")
    previous: Path | None = Field(None, description="encoder.pt of the previous model version")
    progress: Path | None = Field(None, description="append event lines here instead of stdout")

    def args(self) -> list[str]:
        out = [
            "train",
            "--config",
            str(self.config),
            "--snapshot",
            str(self.snapshot),
            "--out",
            str(self.out),
        ]
        if not self.resume:
            out.append("--no-resume")
        if self.previous is not None:
            out += ["--previous", str(self.previous)]
        if self.progress is not None:
            out += ["--progress", str(self.progress)]
        return out


class EvaluateRequest(_Request):
    """``evaluate``: encoders side by side on a snapshot; metrics JSON to ``out`` (else stdout)."""

    snapshot: Path
    encoders: dict[str, Path] = Field(min_length=1, description="name -> encoder.pt")
    config: Path | None = None
    out: Path | None = None

    def args(self) -> list[str]:
        out = ["evaluate", "--snapshot", str(self.snapshot)]
        for name, path in self.encoders.items():
            out += ["--encoder", f"{name}={path}"]
        if self.config is not None:
            out += ["--config", str(self.config)]
        if self.out is not None:
            out += ["--out", str(self.out)]
        return out


class ExportRequest(_Request):
    """``export``: one encoder to several (format, file) targets in one process."""

    checkpoint: Path
    targets: list[tuple[Literal["torchscript", "onnx", "safetensors", "card"], Path]] = Field(min_length=1)

    def args(self) -> list[str]:
        out = ["export", "--checkpoint", str(self.checkpoint)]
        for fmt, path in self.targets:
            out += ["--format", fmt, "--out", str(path)]
        return out


class TrainOutputs(BaseModel):
    """Where a finished ``train`` leaves its results inside ``out``."""

    out: Path

    def encoder(self, run: str) -> Path:
        """``encoder.pt`` of one run (``mcgip`` or ``baseline``)."""
        return self.out / run / "encoder.pt"

    @property
    def metrics(self) -> Path:
        return self.out / "metrics.json"

    @property
    def model_card(self) -> Path:
        return self.out / "model_card.json"


# ---- events: one JSON object per stdout line -------------------------------------------------------


class _Event(BaseModel):
    # Later versions may add fields; a reader of this version keeps what it does not know.
    model_config = ConfigDict(extra="allow")

    def line(self) -> str:
        return json.dumps(self.model_dump(mode="json"), sort_keys=True)


class RunStart(_Event):
    event: Literal["run_start"] = "run_start"
    run: str
    total_steps: int


class ProgressEvent(_Event):
    """Every ``train.log_every`` optimizer steps and at the end of a run (see ``trainer.callbacks``)."""

    event: Literal["progress"] = "progress"
    run: str
    step: int
    total_steps: int
    epoch: int | None = None
    loss: float
    lr: float
    positives_per_step: float | None = None
    images_per_s: float | None = None
    eta_s: float | None = None


class CheckpointEvent(_Event):
    event: Literal["checkpoint"] = "checkpoint"
    run: str
    step: int
    path: str


class RunEnd(_Event):
    """A run finished; extra members: steps, seconds, final loss."""

    event: Literal["run_end"] = "run_end"
    run: str


class EvaluateEvent(_Event):
    event: Literal["evaluate"] = "evaluate"
    models: list[str] = Field(default_factory=list)


class DoneEvent(_Event):
    event: Literal["done"] = "done"
    encoder: str
    metrics: dict[str, Any] = Field(default_factory=dict)


class Exported(_Event):
    event: Literal["exported"] = "exported"
    format: str
    path: str


class ExportFailed(_Event):
    event: Literal["export_failed"] = "export_failed"
    format: str
    error: str


Event = Annotated[
    RunStart | ProgressEvent | CheckpointEvent | RunEnd | EvaluateEvent | DoneEvent | Exported | ExportFailed,
    Field(discriminator="event"),
]
_EVENT: TypeAdapter[Event] = TypeAdapter(Event)


def parse_event(line: str) -> Event | None:
    """The event on one stdout line, or None for any other output (log text, unknown events)."""
    text = line.strip()
    if not text.startswith("{"):
        return None
    try:
        return _EVENT.validate_json(text)
    except ValidationError:
        return None
