"""The job queue kept in the ``jobs`` table: enqueue, claim, heartbeat, finish, retry, requeue, cancel.

Claiming is safe with any number of workers on either backend:

- PostgreSQL: ``SELECT ... FOR UPDATE SKIP LOCKED`` picks a queued row no other transaction holds,
  so concurrent workers take different jobs without waiting on each other.
- SQLite: a conditional ``UPDATE ... WHERE id = :id AND state = 'queued'``; SQLite serialises
  writers, so exactly one worker sees ``rowcount == 1`` for a given job and the others try the next.

Every write a worker makes to a running job is conditional on ``worker_id`` and ``state = 'running'``,
so a worker whose job was requeued (it was presumed dead) or cancelled learns it from the row count
and stops instead of overwriting the new owner's state.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from server.db import Database
from server.jobs.kinds import JobSpec
from server.models import Job, JobState, utcnow

logger = logging.getLogger(__name__)

TERMINAL_STATES = frozenset({JobState.succeeded, JobState.failed, JobState.cancelled})
#: Longest persisted log tail (characters).
LOG_TAIL_CHARS = 16_000


class RetrainAlreadyActive(Exception):
    """A retrain for the dataset is already queued or running."""

    def __init__(self, job: Job) -> None:
        super().__init__(f"retrain job {job.id} is already {job.state.value} for dataset {job.dataset_id}")
        self.job = job


class Beat(StrEnum):
    """What a heartbeat learned about the job."""

    ok = "ok"
    cancel = "cancel"  # an admin asked to cancel it
    lost = "lost"  # it is no longer this worker's running job (requeued or finished elsewhere)


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes for timezone-aware columns; every stored time is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def backoff_s(attempt: int, *, base_s: float = 5.0, cap_s: float = 300.0) -> float:
    """Delay before retry number ``attempt`` (1-based): base * 2^(attempt-1), capped."""
    return float(min(cap_s, base_s * 2 ** max(0, attempt - 1)))


def active_retrain(session: Session, dataset_id: int) -> Job | None:
    """The queued or running retrain of ``dataset_id``, if any."""
    return session.scalar(
        select(Job).where(
            Job.kind == "retrain",
            Job.dataset_id == dataset_id,
            Job.state.in_([JobState.queued, JobState.running]),
        )
    )


def new_job(
    *,
    kind: str,
    dataset_id: int | None = None,
    params: dict[str, Any] | None = None,
    created_by_id: int | None = None,
    max_attempts: int = 3,
) -> Job:
    """A queued, not yet added job row."""
    return Job(
        kind=kind,
        dataset_id=dataset_id,
        params=params or {},
        created_by_id=created_by_id,
        max_attempts=max_attempts,
        state=JobState.queued,
        progress=0.0,
        progress_info={},
        log_tail="",
        attempts=0,
        cancel_requested=False,
    )


def submit(
    db: Database,
    spec: JobSpec,
    *,
    dataset_id: int | None = None,
    created_by_id: int | None = None,
    max_attempts: int = 3,
) -> Job:
    """Insert a queued job in its own transaction and return it.

    Args:
        spec: what to run (a typed spec of ``server.jobs.kinds``); stored as ``kind`` and ``params``.

    Raises:
        RetrainAlreadyActive: ``kind == "retrain"`` and the dataset already has a queued or running
            retrain. The partial unique index ``uq_jobs_active_retrain`` makes this race-free: of two
            concurrent inserts (from any number of processes) the database rejects the second.
    """
    kind, params = spec.kind, spec.params()
    job = new_job(
        kind=kind,
        dataset_id=dataset_id,
        params=params,
        created_by_id=created_by_id,
        max_attempts=max_attempts,
    )
    try:
        with db.session() as session:
            session.add(job)
    except IntegrityError:
        if kind != "retrain" or dataset_id is None:
            raise
        with db.session() as session:
            existing = active_retrain(session, dataset_id)
        if existing is None:  # the other retrain finished in between: try once more
            return submit(
                db, spec, dataset_id=dataset_id, created_by_id=created_by_id, max_attempts=max_attempts
            )
        raise RetrainAlreadyActive(existing) from None
    return job


def _claimable(now: datetime, kinds: frozenset[str] | None) -> list[Any]:
    conditions: list[Any] = [
        Job.state == JobState.queued,
        Job.cancel_requested.is_(False),
        or_(Job.run_after.is_(None), Job.run_after <= now),
    ]
    if kinds is not None:
        conditions.append(Job.kind.in_(sorted(kinds)))
    return conditions


def _claim_values(worker_id: str, now: datetime) -> dict[str, Any]:
    return {
        "state": JobState.running,
        "worker_id": worker_id,
        "heartbeat_at": now,
        "attempts": Job.attempts + 1,
        "started_at": func.coalesce(Job.started_at, now),
        "error": None,
    }


def claim(db: Database, worker_id: str, kinds: frozenset[str] | None = None) -> Job | None:
    """Take the oldest claimable job for ``worker_id`` and mark it running (own transaction).

    Args:
        db: the database.
        worker_id: this worker's id (stored on the job and checked by every later write).
        kinds: only these job kinds (None: any).

    Returns:
        The claimed job (detached snapshot of the row), or None when nothing is claimable.
    """
    now = utcnow()
    with db.session() as session:
        if not db.is_sqlite:
            job_id = session.scalar(
                select(Job.id)
                .where(*_claimable(now, kinds))
                .order_by(Job.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            if job_id is None:
                return None
            session.execute(update(Job).where(Job.id == job_id).values(**_claim_values(worker_id, now)))
            return _reload(session, job_id)
        candidates = session.scalars(select(Job.id).where(*_claimable(now, kinds)).order_by(Job.id).limit(8))
        for job_id in list(candidates):
            result = session.execute(
                update(Job)
                .where(Job.id == job_id, Job.state == JobState.queued, Job.cancel_requested.is_(False))
                .values(**_claim_values(worker_id, now))
            )
            if result.rowcount == 1:  # type: ignore[attr-defined]
                return _reload(session, job_id)
    return None


def claim_job(db: Database, job_id: int, worker_id: str) -> Job | None:
    """Claim one specific queued job (e.g. for a foreground CLI run); None if it is not claimable."""
    now = utcnow()
    with db.session() as session:
        result = session.execute(
            update(Job)
            .where(Job.id == job_id, *_claimable(now, None))
            .values(**_claim_values(worker_id, now))
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            return None
        return _reload(session, job_id)


def _reload(session: Session, job_id: int) -> Job:
    session.flush()
    job = session.get(Job, job_id, populate_existing=True)
    assert job is not None
    return job


def _mine(job_id: int, worker_id: str) -> Any:
    return and_(Job.id == job_id, Job.worker_id == worker_id, Job.state == JobState.running)


def heartbeat(
    db: Database,
    job_id: int,
    worker_id: str,
    *,
    progress: float | None = None,
    progress_info: dict[str, Any] | None = None,
    log_tail: str | None = None,
) -> Beat:
    """Record that ``worker_id`` is alive on the job, with any new progress; report cancel/loss."""
    values: dict[str, Any] = {"heartbeat_at": utcnow()}
    if progress is not None:
        values["progress"] = max(0.0, min(1.0, float(progress)))
    if progress_info is not None:
        values["progress_info"] = progress_info
    if log_tail is not None:
        values["log_tail"] = log_tail[-LOG_TAIL_CHARS:]
    with db.session() as session:
        result = session.execute(update(Job).where(_mine(job_id, worker_id)).values(**values))
        if result.rowcount != 1:  # type: ignore[attr-defined]
            return Beat.lost
        cancel = session.scalar(select(Job.cancel_requested).where(Job.id == job_id))
    return Beat.cancel if cancel else Beat.ok


def complete(session: Session, job_id: int, worker_id: str, *, result: dict[str, Any] | None = None) -> bool:
    """Mark the job succeeded inside the caller's transaction; False when it is no longer ours."""
    outcome = session.execute(
        update(Job)
        .where(_mine(job_id, worker_id))
        .values(state=JobState.succeeded, progress=1.0, result=result, finished_at=utcnow(), error=None)
    )
    return bool(outcome.rowcount == 1)  # type: ignore[attr-defined]


def mark_cancelled(db: Database, job_id: int, worker_id: str) -> bool:
    """The worker stopped the job because an admin cancelled it."""
    with db.session() as session:
        outcome = session.execute(
            update(Job)
            .where(_mine(job_id, worker_id))
            .values(state=JobState.cancelled, finished_at=utcnow(), error="cancelled by request")
        )
        return bool(outcome.rowcount == 1)  # type: ignore[attr-defined]


def fail(db: Database, job_id: int, worker_id: str, error: str, *, transient: bool) -> JobState | None:
    """Record a failure: requeue with back-off when transient and attempts remain, else fail.

    Returns:
        The new state, or None when the job was no longer this worker's.
    """
    with db.session() as session:
        job = session.get(Job, job_id, with_for_update=not db.is_sqlite)
        if job is None or job.worker_id != worker_id or job.state != JobState.running:
            return None
        retry = transient and job.attempts < job.max_attempts and not job.cancel_requested
        if retry:
            delay = backoff_s(job.attempts)
            job.state = JobState.queued
            job.worker_id = None
            job.run_after = utcnow() + timedelta(seconds=delay)
            job.error = f"attempt {job.attempts} failed (retry in {delay:.0f} s): {error}"
        else:
            job.state = JobState.cancelled if job.cancel_requested else JobState.failed
            job.finished_at = utcnow()
            job.error = error
        logger.info("job %s %s: %s", job_id, job.state.value, job.error)
        return job.state


def release(db: Database, job_id: int, worker_id: str) -> bool:
    """Give a running job back to the queue (worker shutdown); the attempt is not counted."""
    with db.session() as session:
        outcome = session.execute(
            update(Job)
            .where(_mine(job_id, worker_id))
            .values(state=JobState.queued, worker_id=None, attempts=Job.attempts - 1, run_after=None)
        )
        return bool(outcome.rowcount == 1)  # type: ignore[attr-defined]


def requeue_stale(db: Database, timeout_s: float) -> list[int]:
    """Requeue running jobs whose worker stopped sending heartbeats ``timeout_s`` ago.

    A job that was cancelled meanwhile becomes cancelled; one that has used all its attempts fails.
    The requeued job runs again from its last checkpoint (handlers resume from their job folder).

    Returns:
        Ids of the jobs whose state changed.
    """
    cutoff = utcnow() - timedelta(seconds=timeout_s)
    changed: list[int] = []
    with db.session() as session:
        stmt = select(Job).where(Job.state == JobState.running, Job.heartbeat_at < cutoff)
        if not db.is_sqlite:
            stmt = stmt.with_for_update(skip_locked=True)
        for job in session.scalars(stmt):
            dead = job.worker_id
            job.worker_id = None
            if job.cancel_requested:
                job.state, job.finished_at, job.error = JobState.cancelled, utcnow(), "cancelled by request"
            elif job.attempts >= job.max_attempts:
                job.state, job.finished_at = JobState.failed, utcnow()
                job.error = f"worker {dead} stopped responding; no attempts left ({job.attempts})"
            else:
                job.state, job.run_after = JobState.queued, None
                job.error = f"worker {dead} stopped responding; requeued"
            changed.append(job.id)
            logger.warning("job %s: worker %s presumed dead -> %s", job.id, dead, job.state.value)
    return changed


def request_cancel(session: Session, job: Job) -> Job:
    """Cancel a queued job at once, or ask the worker running it to stop (it kills its subprocess)."""
    if job.state in TERMINAL_STATES:
        return job
    if job.state == JobState.queued:
        result = session.execute(
            update(Job)
            .where(Job.id == job.id, Job.state == JobState.queued)
            .values(state=JobState.cancelled, cancel_requested=True, finished_at=utcnow(), error="cancelled")
        )
        if result.rowcount == 1:  # type: ignore[attr-defined]
            session.refresh(job)
            return job
    session.execute(update(Job).where(Job.id == job.id).values(cancel_requested=True))
    session.refresh(job)
    return job


@dataclass(frozen=True)
class JobRef:
    """The immutable parts of a claimed job a handler needs."""

    id: int
    kind: str
    dataset_id: int | None
    params: dict[str, Any]
    attempts: int
    progress_info: dict[str, Any]
    log_tail: str

    @classmethod
    def of(cls, job: Job) -> JobRef:
        return cls(
            id=job.id,
            kind=job.kind,
            dataset_id=job.dataset_id,
            params=dict(job.params or {}),
            attempts=job.attempts,
            progress_info=dict(job.progress_info or {}),
            log_tail=job.log_tail or "",
        )
