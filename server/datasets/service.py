"""Create datasets and change their settings (raises domain errors; no HTTP here)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.datasets.settings import DatasetSettings, RetrainPolicy, merge_patch
from server.exceptions import Conflict, Invalid, NotFound, field_errors
from server.models import Dataset, ImageKind
from trainer.config import TrainConfig


def get_dataset(session: Session, dataset_id: int) -> Dataset:
    dataset = session.get(Dataset, dataset_id)
    if dataset is None:
        raise NotFound(f"dataset {dataset_id} not found")
    return dataset


def _check_training_config(config: dict[str, Any], prefix: list[str | int]) -> None:
    """A retrain policy's training config must be a valid ``TrainConfig`` (errors name the field)."""
    try:
        TrainConfig.model_validate(config)
    except ValidationError as exc:
        raise Invalid(field_errors(exc.errors(), prefix)) from None


def create_dataset(
    session: Session,
    *,
    name: str,
    description: str,
    label_set: list[str],
    image_kind: ImageKind,
    settings: DatasetSettings,
) -> Dataset:
    if session.scalar(select(Dataset.id).where(Dataset.name == name)) is not None:
        raise Conflict(f"dataset {name!r} already exists")
    _check_training_config(settings.retrain.config, ["body", "settings", "retrain", "config"])
    dataset = Dataset(
        name=name,
        description=description,
        label_set=label_set,
        image_kind=image_kind,
        settings=settings.to_json(),
    )
    session.add(dataset)
    session.flush()
    return dataset


def update_dataset(
    session: Session, dataset_id: int, *, description: str | None, settings_patch: dict[str, Any] | None
) -> Dataset:
    """Change a dataset's description and/or settings.

    Args:
        settings_patch: an RFC 7396 merge patch applied to the current settings; the result is
            validated as a whole, so one key can change without resending the others.

    Raises:
        NotFound: no such dataset.
        Invalid: the patched settings are not valid (``loc`` starts ``["body", "settings"]``).
    """
    dataset = get_dataset(session, dataset_id)
    if settings_patch is not None:
        current = DatasetSettings.stored(dataset.settings).to_json()
        try:
            patched = DatasetSettings.model_validate(merge_patch(current, settings_patch))
        except ValidationError as exc:
            raise Invalid(field_errors(exc.errors(), ["body", "settings"])) from None
        _check_training_config(patched.retrain.config, ["body", "settings", "retrain", "config"])
        dataset.settings = patched.to_json()
    if description is not None:
        dataset.description = description
    session.flush()
    return dataset


def retrain_policy(session: Session, dataset_id: int) -> RetrainPolicy:
    return DatasetSettings.stored(get_dataset(session, dataset_id).settings).retrain


def set_retrain_policy(session: Session, dataset_id: int, body: dict[str, Any]) -> RetrainPolicy:
    """Replace a dataset's retrain policy; its training config is validated like a retrain job's.

    Raises:
        NotFound: no such dataset.
        Invalid: a bad policy (``loc`` ``["body", field]``) or training config
            (``loc`` ``["body", "params", "config", ...]``, as for a submitted retrain job).
    """
    dataset = get_dataset(session, dataset_id)
    try:
        policy = RetrainPolicy.model_validate(body)
    except ValidationError as exc:
        raise Invalid(field_errors(exc.errors(), ["body"])) from None
    _check_training_config(policy.config, ["body", "params", "config"])
    settings = DatasetSettings.stored(dataset.settings).model_copy(update={"retrain": policy})
    dataset.settings = settings.to_json()
    session.flush()
    return policy
