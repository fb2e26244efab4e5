"""Training configuration: one validated object, loadable from JSON or YAML.

Every section owns its defaults; unknown keys are errors and every rejected value is reported with
its dotted location, e.g. ``train.batch_size: Input should be greater than 0 (got -1)``.
The same config describes the McGIP run and its no-gaze baseline (``TrainConfig.without_gaze``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

MethodName = Literal["moco_v2", "byol", "simsiam", "simclr"]
Backbone = Literal["resnet18", "resnet50"]


class ConfigError(ValueError):
    """A configuration file or dict that does not validate; the message names every bad value."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataConfig(_Section):
    """How images are read and fed to the encoder."""

    image_size: int = Field(224, ge=16, le=2048, description="side of the square crop fed to the encoder")
    load_size: int | None = Field(
        None,
        ge=16,
        le=4096,
        description="images are resized once to this side and cached; None = 1.15 x image_size",
    )
    cache_images: bool = True
    intensity: Literal["minmax", "dtype"] = Field(
        "minmax", description="minmax: per-image 0.5-99.5 percentile window; dtype: divide by 255/65535"
    )
    mean: float = Field(0.5, ge=0.0, le=1.0)
    std: float = Field(0.25, gt=0.0, le=1.0)
    num_workers: int = Field(0, ge=0, le=64)
    train_on_test_images: bool = Field(
        False, description="also pre-train on held-out cases (leaks gaze of evaluated cases; off by default)"
    )


class AugmentConfig(_Section):
    """Radiograph augmentations; ``preset`` fills every field left as None (see docs/trainer.md)."""

    preset: Literal["radiograph", "chest_xray", "mammography", "synthetic"] = "radiograph"
    crop_scale: tuple[float, float] | None = None
    crop_ratio: tuple[float, float] | None = None
    hflip_p: float | None = Field(None, ge=0.0, le=1.0)
    vflip_p: float | None = Field(None, ge=0.0, le=1.0)
    rotation_deg: float | None = Field(None, ge=0.0, le=180.0)
    brightness: float | None = Field(None, ge=0.0, le=1.0)
    contrast: float | None = Field(None, ge=0.0, le=1.0)
    gamma: tuple[float, float] | None = None
    blur_p: float | None = Field(None, ge=0.0, le=1.0)
    blur_sigma: tuple[float, float] | None = None
    noise_std: float | None = Field(None, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _ranges(self) -> AugmentConfig:
        for name in ("crop_scale", "crop_ratio", "gamma", "blur_sigma"):
            value = getattr(self, name)
            if value is not None and not (0.0 < value[0] <= value[1]):
                raise ValueError(f"{name} must be an increasing pair of positive numbers (got {list(value)})")
        if self.crop_scale is not None and self.crop_scale[1] > 1.0:
            raise ValueError(f"crop_scale upper bound must be <= 1 (got {self.crop_scale[1]})")
        return self


class ModelConfig(_Section):
    """Encoder and heads."""

    backbone: Backbone = "resnet18"
    proj_hidden_dim: int = Field(2048, ge=8, le=16384)
    proj_dim: int = Field(128, ge=8, le=8192)
    pred_hidden_dim: int = Field(512, ge=8, le=16384, description="BYOL/SimSiam predictor width")


class MethodConfig(_Section):
    """Self-supervised method and its hyper-parameters."""

    name: MethodName = "moco_v2"
    temperature: float = Field(0.2, gt=0.0, le=10.0, description="MoCo/SimCLR softmax temperature")
    queue_size: int = Field(4096, ge=1, le=1_048_576, description="MoCo queue length")
    momentum: float = Field(0.99, ge=0.0, le=1.0, description="EMA of the key/target encoder (MoCo, BYOL)")
    momentum_cosine: bool = Field(True, description="BYOL: raise the EMA momentum to 1 along a cosine")
    symmetric: bool = Field(False, description="MoCo: add the loss with the views swapped")


class GazeConfig(_Section):
    """Gaze positives. ``enabled=False`` is the no-gaze baseline of the same method."""

    enabled: bool = True
    min_score: float | None = Field(None, description="keep only snapshot pairs with score >= this")
    drop_prob: float = Field(0.0, ge=0.0, lt=1.0, description="GzPT-style: drop each gaze positive w.p. p")
    shuffle: bool = Field(False, description="control: permute case ids so pairs are unrelated to content")
    dense_limit: int = Field(
        16384, ge=0, description="dense N x N mask up to N cases, sorted-key lookup above"
    )


class OptimConfig(_Section):
    """Optimiser and learning-rate schedule (linear warm-up, then cosine to min_lr_ratio * lr)."""

    name: Literal["sgd", "adamw"] = "sgd"
    lr: float = Field(0.06, gt=0.0, le=100.0)
    weight_decay: float = Field(1e-4, ge=0.0, le=1.0)
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    warmup_steps: int = Field(0, ge=0)
    min_lr_ratio: float = Field(0.0, ge=0.0, le=1.0)


#: Progress lines a run writes at least (when it has that many steps).
MIN_CURVE_POINTS = 20


class LoopConfig(_Section):
    """Training loop budget, devices and checkpoints."""

    seed: int = Field(0, ge=0, lt=2**31)
    batch_size: int = Field(32, ge=2, le=65536, description="per process and per micro-batch")
    steps: int = Field(1000, ge=1, description="optimizer steps")
    grad_accum: int = Field(1, ge=1, le=1024)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    amp: bool = Field(True, description="bfloat16/float16 autocast; CUDA only")
    channels_last: bool = Field(True, description="CUDA only")
    checkpoint_every: int = Field(500, ge=1)
    keep_checkpoints: int = Field(2, ge=1)
    log_every: int = Field(
        10, ge=1, description="at most this many steps between progress lines (short runs: see log_interval)"
    )
    deterministic: bool = True

    @property
    def log_interval(self) -> int:
        """Steps between progress lines: ``log_every``, but often enough for ``MIN_CURVE_POINTS`` points.

        A run shorter than ``log_every`` would otherwise report once, at its end: no live progress,
        no estimate of the time left, and a loss curve of a single point.
        """
        return max(1, min(self.log_every, self.steps // MIN_CURVE_POINTS))


class EvalConfig(_Section):
    """Frozen-feature evaluation on the held-out split."""

    knn_k: int = Field(20, ge=1)
    knn_temperature: float = Field(0.07, gt=0.0)
    linear_probe: bool = True
    probe_epochs: int = Field(200, ge=1)
    probe_lr: float = Field(0.05, gt=0.0)
    probe_weight_decay: float = Field(1e-4, ge=0.0)
    batch_size: int = Field(128, ge=1)
    baseline: Literal["train", "none"] = Field(
        "train", description="train the no-gaze baseline on the same snapshot and budget"
    )
    folds: int = Field(5, ge=2, le=20, description="k of the cross-validated evaluation")
    resamples: int = Field(2000, ge=1000, description="bootstrap resamples of every 95% CI")
    cv_seed: int = Field(0, description="fold and resample seed (keep fixed to compare versions)")
    cv_repeats: int = Field(
        10, ge=1, le=100, description="repetitions of k-fold CV behind the test of each difference"
    )
    primary_metric: str = Field(
        "knn.balanced_accuracy", description="metric the better/worse verdict is read from"
    )
    linear_c: float = Field(0.1, gt=0.0, description="inverse L2 strength of the logistic probe")


class TrainConfig(_Section):
    """Everything one training job needs besides the data snapshot."""

    name: str = Field("mcgip", min_length=1, max_length=200)
    data: DataConfig = DataConfig()
    augment: AugmentConfig = AugmentConfig()
    model: ModelConfig = ModelConfig()
    method: MethodConfig = MethodConfig()
    gaze: GazeConfig = GazeConfig()
    optim: OptimConfig = OptimConfig()
    train: LoopConfig = LoopConfig()
    evaluation: EvalConfig = EvalConfig()

    @model_validator(mode="after")
    def _consistent(self) -> TrainConfig:
        if self.optim.warmup_steps >= self.train.steps and self.optim.warmup_steps > 0:
            raise ValueError(
                f"optim.warmup_steps ({self.optim.warmup_steps}) must be below "
                f"train.steps ({self.train.steps})"
            )
        return self

    def without_gaze(self) -> TrainConfig:
        """The no-gaze baseline: identical config, gaze positives off."""
        return self.model_copy(
            update={"gaze": self.gaze.model_copy(update={"enabled": False, "shuffle": False})}
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples become lists); ``TrainConfig.from_dict`` round-trips it."""
        return json.loads(self.model_dump_json())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Validate a dict; raises ConfigError naming every bad or unknown key."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(_describe(exc)) from None

    @classmethod
    def from_file(cls, path: str | Path) -> TrainConfig:
        """Load ``.json``, ``.yaml`` or ``.yml``."""
        path = Path(path)
        text = path.read_text(encoding="utf-8")
        if path.suffix.lower() in {".yaml", ".yml"}:
            import yaml  # optional: only needed for YAML configs

            data = yaml.safe_load(text)
        else:
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{path}: not valid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: top level must be a mapping, got {type(data).__name__}")
        return cls.from_dict(data)


def _describe(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(part) for part in err["loc"]) or "<config>"
        if err["type"] == "extra_forbidden":
            lines.append(f"{loc}: unknown key")
        elif not err["loc"] or err["type"] == "value_error":
            lines.append(f"{loc}: {err['msg']}")
        else:
            lines.append(f"{loc}: {err['msg']} (got {err.get('input')!r})")
    return "invalid training config:\n  " + "\n  ".join(lines)
