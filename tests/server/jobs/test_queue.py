"""The database job queue on SQLite and PostgreSQL: claim, heartbeat, retry, requeue, cancel, uniqueness."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from server.db import Database
from server.jobs import queue
from server.jobs.kinds import EmbedSpec, PairsSpec, RetrainSpec
from server.jobs.queue import Beat, RetrainAlreadyActive
from server.models import Dataset, Job, JobState, utcnow
from server.settings import Settings


@pytest.fixture
def dataset_id(db: Database) -> int:
    with db.session() as session:
        ds = Dataset(name="ds", label_set=["a", "b"], settings={})
        session.add(ds)
        session.flush()
        return ds.id


def _state(db: Database, job_id: int) -> Job:
    with db.session() as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job


def test_claim_marks_running_and_respects_kinds_and_order(db: Database) -> None:
    first = queue.submit(db, PairsSpec())
    second = queue.submit(db, EmbedSpec(model_id=1))
    assert queue.claim(db, "w1", frozenset({"retrain"})) is None
    got = queue.claim(db, "w1", frozenset({"pairs", "embed"}))
    assert got is not None and got.id == first.id
    job = _state(db, first.id)
    assert job.state == JobState.running and job.worker_id == "w1" and job.attempts == 1
    assert job.started_at is not None and job.heartbeat_at is not None
    assert queue.claim(db, "w2").id == second.id  # type: ignore[union-attr]
    assert queue.claim(db, "w3") is None


def test_concurrent_workers_never_claim_the_same_job(db: Database, settings: Settings) -> None:
    ids = {queue.submit(db, PairsSpec()).id for _ in range(24)}
    claimed: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(3)

    def work(name: str) -> None:
        own = Database(settings.resolved_database_url)
        start.wait()
        while (job := queue.claim(own, name)) is not None:
            with lock:
                claimed.append(job.id)
        own.dispose()

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(claimed) == sorted(ids)  # every job exactly once


def test_heartbeat_reports_cancel_and_loss(db: Database) -> None:
    job = queue.submit(db, PairsSpec())
    queue.claim(db, "w1")
    assert queue.heartbeat(db, job.id, "w1", progress=0.5, progress_info={"a": 1}, log_tail="x") is Beat.ok
    stored = _state(db, job.id)
    assert stored.progress == 0.5 and stored.progress_info == {"a": 1} and stored.log_tail == "x"
    assert queue.heartbeat(db, job.id, "intruder") is Beat.lost
    with db.session() as session:
        queue.request_cancel(session, session.get(Job, job.id))  # type: ignore[arg-type]
    assert _state(db, job.id).state == JobState.running  # a running job stops via its worker
    assert queue.heartbeat(db, job.id, "w1") is Beat.cancel
    assert queue.mark_cancelled(db, job.id, "w1")
    assert _state(db, job.id).state == JobState.cancelled


def test_cancel_queued_job_is_immediate_and_never_claimed(db: Database) -> None:
    job = queue.submit(db, PairsSpec())
    with db.session() as session:
        cancelled = queue.request_cancel(session, session.get(Job, job.id))  # type: ignore[arg-type]
        assert cancelled.state == JobState.cancelled
    assert queue.claim(db, "w1") is None


def test_transient_failure_retries_with_backoff_then_fails(db: Database) -> None:
    job = queue.submit(db, PairsSpec(), max_attempts=2)
    queue.claim(db, "w1")
    assert queue.fail(db, job.id, "w1", "boom", transient=True) == JobState.queued
    stored = _state(db, job.id)
    run_after = queue.as_utc(stored.run_after)
    assert run_after is not None and run_after > utcnow() + timedelta(seconds=3)
    assert "boom" in (stored.error or "")
    assert queue.claim(db, "w1") is None  # backing off
    with db.session() as session:
        session.execute(update(Job).where(Job.id == job.id).values(run_after=utcnow() - timedelta(seconds=1)))
    assert queue.claim(db, "w1") is not None
    assert queue.fail(db, job.id, "w1", "boom again", transient=True) == JobState.failed
    assert _state(db, job.id).attempts == 2


def test_permanent_failure_does_not_retry(db: Database) -> None:
    job = queue.submit(db, PairsSpec(), max_attempts=5)
    queue.claim(db, "w1")
    assert queue.fail(db, job.id, "w1", "bad config", transient=False) == JobState.failed


def test_backoff_grows_and_is_capped() -> None:
    assert [queue.backoff_s(a) for a in (1, 2, 3)] == [5.0, 10.0, 20.0]
    assert queue.backoff_s(30) == 300.0


def test_dead_worker_job_is_requeued_after_timeout(db: Database) -> None:
    job = queue.submit(db, PairsSpec())
    queue.claim(db, "dead")
    assert queue.requeue_stale(db, timeout_s=60) == []  # fresh heartbeat
    with db.session() as session:
        session.execute(
            update(Job).where(Job.id == job.id).values(heartbeat_at=utcnow() - timedelta(seconds=120))
        )
    assert queue.requeue_stale(db, timeout_s=60) == [job.id]
    stored = _state(db, job.id)
    assert stored.state == JobState.queued and stored.worker_id is None
    # The presumed-dead worker finds out on its next write and must not overwrite the new owner.
    assert queue.heartbeat(db, job.id, "dead") is Beat.lost
    claimed = queue.claim(db, "alive")
    assert claimed is not None and claimed.attempts == 2
    with db.session() as session:
        assert not queue.complete(session, job.id, "dead")
        assert queue.complete(session, job.id, "alive", result={"ok": True})
    assert _state(db, job.id).state == JobState.succeeded


def test_stale_job_out_of_attempts_fails_and_cancelled_one_is_cancelled(db: Database) -> None:
    a = queue.submit(db, PairsSpec(), max_attempts=1)
    b = queue.submit(db, PairsSpec())
    queue.claim(db, "dead")
    queue.claim(db, "dead")
    with db.session() as session:
        session.execute(update(Job).where(Job.id == b.id).values(cancel_requested=True))
        session.execute(update(Job).values(heartbeat_at=utcnow() - timedelta(seconds=120)))
    queue.requeue_stale(db, timeout_s=60)
    assert _state(db, a.id).state == JobState.failed
    assert _state(db, b.id).state == JobState.cancelled


def test_release_returns_job_without_counting_the_attempt(db: Database) -> None:
    job = queue.submit(db, PairsSpec())
    queue.claim(db, "w1")
    assert queue.release(db, job.id, "w1")
    stored = _state(db, job.id)
    assert stored.state == JobState.queued and stored.attempts == 0


def test_second_retrain_of_a_dataset_is_refused_until_the_first_ends(db: Database, dataset_id: int) -> None:
    first = queue.submit(db, RetrainSpec(), dataset_id=dataset_id)
    with pytest.raises(RetrainAlreadyActive) as info:
        queue.submit(db, RetrainSpec(), dataset_id=dataset_id)
    assert info.value.job.id == first.id
    queue.claim(db, "w1")
    with pytest.raises(RetrainAlreadyActive):
        queue.submit(db, RetrainSpec(), dataset_id=dataset_id)
    with db.session() as session:
        queue.complete(session, first.id, "w1")
    assert queue.submit(db, RetrainSpec(), dataset_id=dataset_id).id != first.id


def test_simultaneous_retrain_triggers_make_one_job(
    db: Database, settings: Settings, dataset_id: int
) -> None:
    n = 6
    start = threading.Barrier(n)
    outcomes: list[object] = []
    lock = threading.Lock()

    def trigger() -> None:
        own = Database(settings.resolved_database_url)
        start.wait()
        try:
            result: object = queue.submit(own, RetrainSpec(), dataset_id=dataset_id).id
        except RetrainAlreadyActive as exc:
            result = ("conflict", exc.job.id)
        with lock:
            outcomes.append(result)
        own.dispose()

    threads = [threading.Thread(target=trigger) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    created = [o for o in outcomes if isinstance(o, int)]
    assert len(created) == 1
    assert all(o == ("conflict", created[0]) for o in outcomes if not isinstance(o, int))
    with db.session() as session:
        assert len(session.scalars(select(Job).where(Job.kind == "retrain")).all()) == 1


def test_skip_locked_claim_does_not_wait_for_a_locked_row(
    db: Database, settings: Settings, backend: str
) -> None:
    if backend != "postgresql":
        pytest.skip("FOR UPDATE SKIP LOCKED is the PostgreSQL claim path")
    first = queue.submit(db, PairsSpec())
    second = queue.submit(db, PairsSpec())
    holder = Database(settings.resolved_database_url)
    other = Database(settings.resolved_database_url)
    with holder.engine.connect() as conn:
        trans = conn.begin()
        # Worker A is between its SELECT ... FOR UPDATE and its commit on the oldest job.
        conn.execute(select(Job.id).where(Job.id == first.id).with_for_update())
        t0 = time.monotonic()
        got = queue.claim(other, "worker-b")
        waited = time.monotonic() - t0
        trans.rollback()
    assert got is not None and got.id == second.id  # skipped the locked row instead of blocking
    assert waited < 5
    assert queue.claim(other, "worker-b").id == first.id  # type: ignore[union-attr]
    holder.dispose()
    other.dispose()
