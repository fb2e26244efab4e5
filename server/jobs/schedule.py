"""Schedules run by every worker's main loop (idempotent, so several workers may run them at once).

- Finished sessions without features get a ``session-features`` job (which then queues ``pairs``).
- Sessions with features that no pairs job has mined yet get a ``pairs`` job (a safety net).
- Each dataset's retrain policy (``DatasetSettings.retrain``) may queue a
  ``retrain``; the partial unique index keeps it to one per dataset even if two workers race.
- An active model whose embeddings miss some cases gets an ``embed`` job.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.datasets.settings import DatasetSettings, RetrainPolicy
from server.datasets.snapshot import positive_count
from server.db import Database
from server.jobs import queue
from server.jobs.kinds import EmbedSpec, FeaturesSpec, PairsSpec, RetrainSpec
from server.jobs.queue import RetrainAlreadyActive, as_utc
from server.models import (
    Case,
    CaseEmbedding,
    Dataset,
    Job,
    JobState,
    MinedSession,
    ModelVersion,
    ReadingSession,
    SessionFeatures,
    SessionStatus,
    StoredImage,
    utcnow,
)
from server.reading.quality import abandon_idle_sessions, minable, mined_unminable

logger = logging.getLogger(__name__)

ACTIVE = (JobState.queued, JobState.running)


def _has_active(session: Session, kind: str, dataset_id: int) -> bool:
    return (
        session.scalar(
            select(Job.id)
            .where(Job.kind == kind, Job.dataset_id == dataset_id, Job.state.in_(ACTIVE))
            .limit(1)
        )
        is not None
    )


def _datasets_needing_features(session: Session) -> set[int]:
    rows = session.scalars(
        select(Case.dataset_id)
        .join(ReadingSession, ReadingSession.case_id == Case.id)
        .outerjoin(SessionFeatures, SessionFeatures.session_id == ReadingSession.id)
        .where(ReadingSession.status == SessionStatus.finished, SessionFeatures.session_id.is_(None))
        .distinct()
    )
    return set(rows)


def _datasets_needing_pairs(session: Session) -> set[int]:
    out: set[int] = set()
    for dataset in session.scalars(select(Dataset)):
        metric = DatasetSettings.stored(dataset.settings, dataset_id=dataset.id).metric
        unmined = session.scalar(
            select(SessionFeatures.session_id)
            .join(ReadingSession, ReadingSession.id == SessionFeatures.session_id)
            .join(Case, Case.id == ReadingSession.case_id)
            .outerjoin(
                MinedSession,
                (MinedSession.session_id == SessionFeatures.session_id) & (MinedSession.metric == metric),
            )
            # Flagged sessions are never mined: without this they would look unmined forever.
            .where(Case.dataset_id == dataset.id, MinedSession.session_id.is_(None), minable())
            .limit(1)
        )
        if unmined is not None or mined_unminable(session, dataset.id, metric):
            out.add(dataset.id)
    return out


def retrain_reasons(session: Session, dataset: Dataset, policy: RetrainPolicy, now: datetime) -> list[str]:
    """Which policy conditions hold now (empty: not due)."""
    last_model = session.scalar(
        select(ModelVersion)
        .where(ModelVersion.dataset_id == dataset.id)
        .order_by(ModelVersion.id.desc())
        .limit(1)
    )
    since = as_utc(last_model.created_at) if last_model else None
    finished = select(func.count()).select_from(ReadingSession).join(Case, Case.id == ReadingSession.case_id)
    finished = finished.where(Case.dataset_id == dataset.id, ReadingSession.status == SessionStatus.finished)
    if since is not None:
        finished = finished.where(ReadingSession.finished_at > since)
    new_sessions = int(session.scalar(finished) or 0)
    metric = DatasetSettings.stored(dataset.settings, dataset_id=dataset.id).metric
    before = int(((last_model.snapshot or {}).get("counts") or {}).get("positives", 0)) if last_model else 0
    new_positives = positive_count(session, dataset.id, metric) - before
    checks: list[tuple[str, bool]] = []
    if policy.interval_hours is not None:
        elapsed = since is None or now - since >= timedelta(hours=policy.interval_hours)
        checks.append(("interval", elapsed and new_sessions > 0))
    if policy.min_new_sessions is not None:
        checks.append(("new_sessions", new_sessions >= policy.min_new_sessions))
    if policy.min_new_positives is not None:
        checks.append(("new_positives", new_positives >= policy.min_new_positives))
    if not checks:
        return []
    met = [name for name, ok in checks if ok]
    if policy.require_all and len(met) != len(checks):
        return []
    return met


def _schedule_retrains(db: Database, now: datetime) -> None:
    with db.session() as session:
        due: list[tuple[int, RetrainPolicy, list[str]]] = []
        for dataset in session.scalars(select(Dataset)):
            # an invalid stored policy reads as the default (disabled), with a warning
            policy = DatasetSettings.stored(dataset.settings, dataset_id=dataset.id).retrain
            if not policy.enabled or _has_active(session, "retrain", dataset.id):
                continue
            last = session.scalar(
                select(func.max(Job.created_at)).where(Job.kind == "retrain", Job.dataset_id == dataset.id)
            )
            last_at = as_utc(last)
            if last_at is not None and now - last_at < timedelta(minutes=policy.cooldown_minutes):
                continue
            reasons = retrain_reasons(session, dataset, policy, now)
            if reasons:
                due.append((dataset.id, policy, reasons))
    for dataset_id, policy, reasons in due:
        try:
            spec = RetrainSpec(config=policy.config, trigger={"schedule": reasons})
            job = queue.submit(db, spec, dataset_id=dataset_id)
            logger.info("dataset %s: scheduled retrain job %s (%s)", dataset_id, job.id, ", ".join(reasons))
        except RetrainAlreadyActive:
            pass


def _schedule_embeddings(db: Database) -> list[tuple[int, int]]:
    with db.session() as session:
        wanted = []
        for model in session.scalars(select(ModelVersion).where(ModelVersion.is_active.is_(True))):
            cases = (
                session.scalar(
                    select(func.count())
                    .select_from(StoredImage)
                    .join(Case, Case.id == StoredImage.case_id)
                    .where(Case.dataset_id == model.dataset_id)
                )
                or 0
            )
            embedded = (
                session.scalar(
                    select(func.count())
                    .select_from(CaseEmbedding)
                    .where(CaseEmbedding.model_version_id == model.id)
                )
                or 0
            )
            if embedded < cases and not _has_active(session, "embed", model.dataset_id):
                wanted.append((model.dataset_id, model.id))
    for dataset_id, model_id in wanted:
        queue.submit(db, EmbedSpec(model_id=model_id), dataset_id=dataset_id)
    return wanted


def tick(db: Database) -> None:
    """Queue the jobs that are due."""
    now = utcnow()
    with db.session() as session:
        abandon_idle_sessions(session, now)
    with db.session() as session:
        features = {
            d for d in _datasets_needing_features(session) if not _has_active(session, "session-features", d)
        }
        pairs = {
            d
            for d in _datasets_needing_pairs(session)
            if d not in features
            and not _has_active(session, "pairs", d)
            and not _has_active(session, "session-features", d)
        }
    for dataset_id in sorted(features):
        queue.submit(db, FeaturesSpec(), dataset_id=dataset_id)
    for dataset_id in sorted(pairs):
        queue.submit(db, PairsSpec(), dataset_id=dataset_id)
    _schedule_retrains(db, now)
    _schedule_embeddings(db)
