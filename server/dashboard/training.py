"""The dashboard's retraining form: validate its fields and turn them into a ``retrain`` job request.

The form speaks in an admin's terms (method, backbone, pair metric, similarity threshold, epochs);
the trainer speaks in ``TrainConfig`` terms (optimizer steps, ``gaze.min_score``). This module maps
one onto the other, validates the result with ``TrainConfig`` itself, and reports every problem
against the form field that caused it, so the page can show the message next to that field. It
submits nothing: the page posts the returned job to ``POST /api/jobs`` (one place for queueing,
the one-retrain-per-dataset rule and the audit log).
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.apitypes import Id
from server.datasets.settings import GAZE_METRICS, DatasetSettings
from server.exceptions import Invalid, NotFound
from server.models import Case, Dataset, StoredImage
from trainer.config import Backbone, MethodName, TrainConfig
from trainer.data.snapshot import assign_split

#: TrainConfig location -> the form field that sets it.
FIELD_OF_CONFIG: dict[tuple[str, ...], str] = {
    ("method", "name"): "method",
    ("model", "backbone"): "backbone",
    ("gaze", "min_score"): "threshold",
    ("train", "steps"): "epochs",
}


class RetrainForm(BaseModel):
    """What the dashboard's training form sends."""

    model_config = ConfigDict(extra="forbid")

    dataset_id: Id
    method: MethodName = "moco_v2"
    backbone: Backbone = "resnet18"
    metric: str = Field("moments", description=f"pair metric, one of {', '.join(GAZE_METRICS)}")
    threshold: float = Field(0.9, ge=0.0, le=1.0, description="train on gaze pairs with score >= this")
    epochs: int = Field(100, ge=1, le=10_000, description="passes over the training cases")
    advanced: dict[str, Any] = Field(
        default_factory=dict, description="more TrainConfig sections (docs/trainer.md); fields above win"
    )

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        if value not in GAZE_METRICS:
            raise ValueError(f"metric must be one of {', '.join(GAZE_METRICS)} (got {value!r})")
        return value


class RetrainPlan(BaseModel):
    """The job to submit and how the form's fields were translated."""

    job: dict[str, Any] = Field(description="body for POST /api/jobs")
    training_cases: int
    steps: int
    images_per_step: int
    dataset_threshold: float


def _merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """Nested dict merge; values of ``top`` win."""
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _form_loc(config_loc: tuple[int | str, ...], msg: str = "") -> list[int | str]:
    """Where a TrainConfig error belongs on the form: a named field, else inside ``advanced``."""
    if not config_loc and "train.steps" in msg:
        return ["body", "epochs"]  # the whole-config check that warm-up ends before the last step
    for prefix, field in FIELD_OF_CONFIG.items():
        if tuple(config_loc[: len(prefix)]) == prefix:
            return ["body", field]
    return ["body", "advanced", *config_loc]


def _config_errors(exc: ValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": _form_loc(tuple(err["loc"]), err["msg"]), "msg": err["msg"], "type": err["type"]}
        for err in exc.errors()
    ]


def training_cases(session: Session, dataset_id: int, *, include_test: bool) -> int:
    """Cases with an image the trainer trains on (its fixed split, unless test cases are included)."""
    ids = session.scalars(
        select(Case.id).join(StoredImage, StoredImage.case_id == Case.id).where(Case.dataset_id == dataset_id)
    )
    return sum(1 for cid in ids if include_test or assign_split(str(cid)) == "train")


def plan_retrain(session: Session, form: RetrainForm) -> RetrainPlan:
    """Validate ``form`` against the dataset and ``TrainConfig``; return the retrain job to submit.

    One epoch is one pass over the training cases, so ``steps = ceil(epochs * cases / images_per_step)``
    with ``images_per_step = batch_size * grad_accum``.

    Raises:
        NotFound: unknown dataset.
        Invalid: ``{"loc": ["body", field, ...], "msg", "type"}`` entries naming the offending fields.
    """
    dataset = session.get(Dataset, form.dataset_id)
    if dataset is None:
        raise NotFound(f"dataset {form.dataset_id} not found")
    dataset_threshold = DatasetSettings.stored(dataset.settings, dataset_id=dataset.id).threshold
    errors: list[dict[str, Any]] = []
    if form.threshold < dataset_threshold:
        errors.append(
            {
                "loc": ["body", "threshold"],
                "msg": f"pairs of this dataset are mined as positives at >= {dataset_threshold:g}; a lower "
                "training threshold would change nothing (lower the dataset's threshold and recompute pairs)",
                "type": "value_error",
            }
        )
    # Validate the advanced part first: the batch size it sets decides the step count.
    try:
        base = TrainConfig.model_validate(form.advanced)
    except ValidationError as exc:
        errors += _config_errors(exc)
        raise Invalid(errors) from None
    cases = training_cases(session, dataset.id, include_test=base.data.train_on_test_images)
    per_step = base.train.batch_size * base.train.grad_accum
    steps = max(1, math.ceil(form.epochs * cases / per_step))
    fields = {
        "method": {"name": form.method},
        "model": {"backbone": form.backbone},
        "gaze": {"min_score": form.threshold},
        "train": {"steps": steps},
    }
    try:
        config = TrainConfig.model_validate(_merge(form.advanced, fields))
    except ValidationError as exc:
        errors += _config_errors(exc)
    if errors:
        raise Invalid(errors)
    job = {
        "kind": "retrain",
        "dataset_id": dataset.id,
        "params": {"config": config.to_dict(), "metric": form.metric},
    }
    return RetrainPlan(
        job=job,
        training_cases=cases,
        steps=steps,
        images_per_step=per_step,
        dataset_threshold=dataset_threshold,
    )
