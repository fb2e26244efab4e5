"""Registering, listing and promoting model versions (rows are never changed after creation,
except for the active flag that promotion moves)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from server.exceptions import NotFound
from server.models import ModelVersion, utcnow


def register_version(
    session: Session,
    *,
    job_id: int,
    dataset_id: int,
    artifact_dir: str,
    config: dict[str, Any],
    snapshot: dict[str, Any],
    metrics: dict[str, Any],
    checksums: dict[str, str],
    parent_id: int | None,
) -> ModelVersion:
    """The model version of ``job_id``: the existing one, or a new one with the next version number.

    Idempotent per job (``model_versions.job_id`` is unique), which is what makes "one job, one
    version" hold when a worker is killed between training and registration and the job reruns.
    """
    existing = session.scalar(select(ModelVersion).where(ModelVersion.job_id == job_id))
    if existing is not None:
        return existing
    latest = session.scalar(
        select(func.max(ModelVersion.version)).where(ModelVersion.dataset_id == dataset_id)
    )
    version = ModelVersion(
        dataset_id=dataset_id,
        version=int(latest or 0) + 1,
        job_id=job_id,
        parent_id=parent_id,
        method=str(config.get("method", {}).get("name", "unknown")),
        backbone=str(config.get("model", {}).get("backbone", "unknown")),
        config=config,
        snapshot=snapshot,
        metrics=metrics,
        checksums=checksums,
        artifact_dir=artifact_dir,
        is_active=False,
    )
    session.add(version)
    session.flush()
    return version


def get_version(session: Session, model_id: int) -> ModelVersion:
    found = session.get(ModelVersion, model_id)
    if found is None:
        raise NotFound(f"model {model_id} not found")
    return found


def active_version(session: Session, dataset_id: int) -> ModelVersion | None:
    return session.scalar(
        select(ModelVersion).where(ModelVersion.dataset_id == dataset_id, ModelVersion.is_active.is_(True))
    )


def promote(session: Session, version: ModelVersion) -> ModelVersion:
    """Make ``version`` the dataset's active model (promoting an older one is a rollback)."""
    # Clearing every flag of the dataset first locks those rows (PostgreSQL) or the database (SQLite),
    # so two concurrent promotions serialise and exactly one version stays active.
    session.execute(
        update(ModelVersion)
        .where(ModelVersion.dataset_id == version.dataset_id, ModelVersion.id != version.id)
        .values(is_active=False)
    )
    session.execute(
        update(ModelVersion).where(ModelVersion.id == version.id).values(is_active=True, promoted_at=utcnow())
    )
    session.refresh(version)
    return version
