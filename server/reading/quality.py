"""Session quality: the gate applied when a session finishes, and abandoning idle open sessions.

A flagged session keeps its gaze (nothing is deleted) but stays out of pair mining until an admin
overrides the flag; ``minable`` is the one SQL condition the miner and the scheduler use for that.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session

from server.datasets.settings import DatasetSettings, SessionQuality
from server.models import Case, Dataset, GazeChunk, MinedSession, ReadingSession, SessionStatus
from server.reading.samples import COLUMN, FLAG_VALID
from trainer.arrays import FloatArray

logger = logging.getLogger(__name__)


def minable() -> ColumnElement[bool]:
    """Sessions pair mining may use: not flagged by the quality gate, or flagged and overridden."""
    return or_(ReadingSession.quality_flag.is_(None), ReadingSession.quality_override.is_(True))


def mined_unminable(session: Session, dataset_id: int, metric: str) -> list[int]:
    """Sessions of the dataset mined into ``metric``'s pairs that pair mining may no longer use.

    An admin can take back an override (flagging a session again) after its pairs were mined; its
    pairs must then go. The scheduler queues pair mining for such a dataset and the miner, seeing
    them, forgets them and rebuilds the dataset's pairs from the minable sessions only.
    """
    rows = session.scalars(
        select(MinedSession.session_id)
        .join(ReadingSession, ReadingSession.id == MinedSession.session_id)
        .join(Case, Case.id == ReadingSession.case_id)
        .where(Case.dataset_id == dataset_id, MinedSession.metric == metric, ~minable())
        .distinct()
    )
    return sorted(rows)


def valid_fraction(samples: FloatArray) -> float | None:
    """Share of samples with a valid gaze point; None without samples. ``samples``: (m, 18)."""
    if samples.shape[0] == 0:
        return None
    flags = samples[:, COLUMN["flags"]].astype(np.int64)
    return float(((flags & FLAG_VALID) != 0).mean())


def validation_error_deg(source_info: dict[str, Any]) -> float | None:
    """Mean validation error (degrees) the webcam calibration stored with the session, if any."""
    calibration = source_info.get("calibration")
    validation = calibration.get("validation") if isinstance(calibration, dict) else None
    value = validation.get("mean_deg") if isinstance(validation, dict) else None
    return float(value) if isinstance(value, int | float) and np.isfinite(value) else None


def gate(quality: SessionQuality, samples: FloatArray, source_info: dict[str, Any]) -> str | None:
    """Why a finished session fails the gate (all reasons, "; "-joined), or None when it passes."""
    reasons = []
    fraction = valid_fraction(samples)
    if fraction is None:
        reasons.append("no gaze samples")
    elif fraction < quality.min_valid_fraction:
        reasons.append(f"valid gaze {fraction:.0%} < minimum {quality.min_valid_fraction:.0%}")
    error = validation_error_deg(source_info)
    if (
        quality.max_validation_error_deg is not None
        and error is not None
        and error > quality.max_validation_error_deg
    ):
        reasons.append(f"validation error {error:.1f}° > maximum {quality.max_validation_error_deg:.1f}°")
    return "; ".join(reasons) or None


def apply_gate(session: Session, reading: ReadingSession, samples: FloatArray) -> None:
    """Flag (or clear) a session by its dataset's quality gate."""
    dataset = session.scalar(
        select(Dataset).join(Case, Case.dataset_id == Dataset.id).where(Case.id == reading.case_id)
    )
    quality = DatasetSettings.stored(dataset.settings if dataset else None).quality
    reading.quality_flag = gate(quality, samples, reading.source_info)
    if reading.quality_flag:
        logger.info("session %s flagged by the quality gate: %s", reading.id, reading.quality_flag)


def abandon_idle_sessions(session: Session, now: datetime) -> list[int]:
    """Mark open sessions abandoned when neither their start nor their last gaze frame is within
    their dataset's ``abandon_after_minutes``; returns their ids."""
    last_frame = (
        select(func.max(GazeChunk.received_at))
        .where(GazeChunk.session_id == ReadingSession.id)
        .scalar_subquery()
    )
    rows = session.execute(
        select(ReadingSession, Dataset.settings, Dataset.id, last_frame)
        .join(Case, Case.id == ReadingSession.case_id)
        .join(Dataset, Dataset.id == Case.dataset_id)
        .where(ReadingSession.status == SessionStatus.open)
    ).all()
    abandoned = []
    for reading, raw, dataset_id, last in rows:
        limit = timedelta(
            minutes=DatasetSettings.stored(raw, dataset_id=dataset_id).quality.abandon_after_minutes
        )
        activity = max(_utc(reading.started_at), _utc(last) if last is not None else _utc(reading.started_at))
        if now - activity >= limit:
            reading.status = SessionStatus.abandoned
            abandoned.append(reading.id)
    if abandoned:
        logger.info("abandoned %d idle reading sessions: %s", len(abandoned), abandoned)
    return abandoned


def _utc(value: datetime) -> datetime:
    # SQLite returns naive datetimes (stored as UTC).
    return value if value.tzinfo else value.replace(tzinfo=UTC)
