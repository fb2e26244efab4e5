"""The background worker process: claims queued jobs from the database and runs them.

One worker process runs two lanes (threads), each claiming its own kinds, so that session features
and pair mining (seconds) keep flowing while a training run (minutes) occupies the heavy lane. The
main thread beats the worker's own heartbeat, requeues jobs of dead workers and runs the schedules.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ValidationError
from sqlalchemy import update

from server.db import Database
from server.jobs import queue, schedule
from server.jobs.kinds import JobSpec, spec_of
from server.jobs.queue import Beat, JobRef
from server.models import WorkerHeartbeat, utcnow
from server.observability.logs import configure_log_format, job_context
from server.settings import Settings
from server.worker.context import JobCancelled, JobContext, JobLost, PermanentError
from server.worker.handlers import HANDLERS, Handler
from server.worker.options import WorkerOptions

logger = logging.getLogger(__name__)


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def parse_spec(job: JobRef) -> JobSpec:
    """The job's typed spec, parsed once before its handler runs.

    Raises:
        PermanentError: the stored params do not fit the kind (retrying would not help).
    """
    try:
        return spec_of(job.kind, job.params)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise PermanentError(f"invalid {job.kind} parameters: {where}: {first['msg']}") from None


class Worker:
    """Claims and runs jobs; ``run_once`` is the unit the loop (and tests) drive.

    Args:
        settings: configuration.
        options: worker knobs (environment by default).
        handlers: job kind -> handler (the built-in handlers by default).
        db: an existing database handle (one is created otherwise).
    """

    def __init__(
        self,
        settings: Settings,
        options: WorkerOptions | None = None,
        handlers: Mapping[str, Handler] | None = None,
        db: Database | None = None,
    ) -> None:
        self.settings = settings
        self.options = options or WorkerOptions()
        self.handlers = dict(HANDLERS if handlers is None else handlers)
        self.db = db or Database(settings.resolved_database_url)
        self.id = new_worker_id()
        self.stop = threading.Event()
        self._current: dict[str, int | None] = {}
        self._contexts: dict[int, JobContext] = {}

    # ---- jobs -----------------------------------------------------------------------------------
    def run_once(self, kinds: frozenset[str] | None = None, lane: str = "main") -> int | None:
        """Claim one job (of ``kinds``) and run it to an end state. Returns its id, or None if idle."""
        claimable = frozenset(self.handlers) if kinds is None else kinds & frozenset(self.handlers)
        job = queue.claim(self.db, self.id, claimable)
        if job is None:
            return None
        self._current[lane] = job.id
        try:
            with job_context(job.id):
                self._execute(JobRef.of(job))
        finally:
            self._current[lane] = None
        return job.id

    def run_job(self, job_id: int) -> bool:
        """Claim and run one specific queued job here; False when it was not claimable."""
        job = queue.claim_job(self.db, job_id, self.id)
        if job is None:
            return False
        with job_context(job.id):
            self._execute(JobRef.of(job))
        return True

    def _execute(self, job: JobRef) -> None:
        logger.info("job %s (%s) started, attempt %s", job.id, job.kind, job.attempts)
        ctx = JobContext(self.db, self.settings, job, self.id, self.options)
        handler = self.handlers[job.kind]
        self._contexts[job.id] = ctx
        ctx.start()
        try:
            self._run_handler(job, ctx, handler)
        finally:
            self._contexts.pop(job.id, None)

    def _run_handler(self, job: JobRef, ctx: JobContext, handler: Handler) -> None:
        try:
            outcome = handler(ctx, parse_spec(job))
        except JobCancelled:
            ctx.stop()
            queue.mark_cancelled(self.db, job.id, self.id)
            logger.info("job %s cancelled", job.id)
            return
        except JobLost:
            ctx.stop()
            if self.stop.is_set():
                queue.release(self.db, job.id, self.id)
                logger.info("job %s released for another worker (shutting down)", job.id)
            else:
                logger.warning("job %s was taken away from this worker; dropped", job.id)
            return
        except PermanentError as exc:
            ctx.stop()
            queue.fail(self.db, job.id, self.id, str(exc), transient=False)
            return
        except Exception as exc:
            ctx.stop()
            logger.exception("job %s failed", job.id)
            queue.fail(self.db, job.id, self.id, f"{type(exc).__name__}: {exc}", transient=True)
            return
        ctx.stop()
        if ctx.outcome is Beat.lost:
            return
        self._complete(job, outcome)

    def _complete(self, job: JobRef, outcome: Any) -> None:
        try:
            with self.db.session() as session:
                result = outcome(session) if callable(outcome) else outcome
                # Conditional on ownership: a worker that lost the job writes nothing (rollback).
                if not queue.complete(session, job.id, self.id, result=result):
                    raise JobLost(f"job {job.id} no longer owned")
        except JobLost:
            logger.warning("job %s finished but was no longer owned; result discarded", job.id)
            return
        except PermanentError as exc:
            queue.fail(self.db, job.id, self.id, str(exc), transient=False)
            return
        except Exception as exc:
            logger.exception("job %s: recording the result failed", job.id)
            queue.fail(self.db, job.id, self.id, f"{type(exc).__name__}: {exc}", transient=True)
            return
        logger.info("job %s succeeded", job.id)

    # ---- loop -----------------------------------------------------------------------------------
    def _lane_loop(self, lane: str, kinds: frozenset[str]) -> None:
        while not self.stop.is_set():
            try:
                ran = self.run_once(kinds, lane)
            except Exception:
                logger.exception("lane %s: claiming failed", lane)
                ran = None
            if ran is None:
                self.stop.wait(self.options.poll_s)

    def _beat(self, *, first: bool = False) -> None:
        current = next((j for j in self._current.values() if j is not None), None)
        with self.db.session() as session:
            if first:
                session.add(
                    WorkerHeartbeat(
                        id=self.id,
                        hostname=socket.gethostname(),
                        pid=os.getpid(),
                        info={"lanes": sorted(self.options.lane_kinds())},
                    )
                )
            else:
                session.execute(
                    update(WorkerHeartbeat)
                    .where(WorkerHeartbeat.id == self.id)
                    .values(heartbeat_at=utcnow(), current_job_id=current)
                )

    def _maintain(self) -> None:
        self._beat()
        queue.requeue_stale(self.db, self.options.stale_after_s)

    def run(self) -> None:
        """Run the lanes and the maintenance loop until ``stop`` is set."""
        self._beat(first=True)
        threads = [
            threading.Thread(target=self._lane_loop, args=(lane, kinds), name=f"lane-{lane}", daemon=True)
            for lane, kinds in self.options.lane_kinds().items()
        ]
        for thread in threads:
            thread.start()
        ticks: list[tuple[float, Callable[[], Any]]] = [
            (self.options.heartbeat_s, self._maintain),
            (self.options.schedule_every_s, lambda: schedule.tick(self.db)),
        ]
        due = [0.0 for _ in ticks]
        elapsed = 0.0
        step = min(period for period, _ in ticks)
        while not self.stop.is_set():
            for i, (period, fn) in enumerate(ticks):
                if elapsed >= due[i]:
                    due[i] = elapsed + period
                    try:
                        fn()
                    except Exception:
                        logger.exception("worker maintenance step failed")
            self.stop.wait(step)
            elapsed += step
        # Shutting down: stop running jobs now and hand them back to the queue (they resume elsewhere).
        for ctx in list(self._contexts.values()):
            ctx.abandon()
        for thread in threads:
            thread.join(timeout=60)
        with self.db.session() as session:
            session.execute(
                update(WorkerHeartbeat).where(WorkerHeartbeat.id == self.id).values(stopped_at=utcnow())
            )
        self.db.dispose()


def _stop_when_orphaned(worker: Worker, parent_pid: int) -> None:
    """Stop ``worker`` once ``parent_pid`` is no longer our parent (it exited, even by SIGKILL)."""
    while not worker.stop.wait(1.0):
        if os.getppid() != parent_pid:
            logger.warning("parent process %d is gone; stopping the worker", parent_pid)
            worker.stop.set()


def run_worker(
    settings: Settings, *, options: WorkerOptions | None = None, parent_pid: int | None = None
) -> None:
    """Run a worker until SIGTERM/SIGINT (``mcgip worker``).

    Args:
        settings: Application settings.
        options: Lanes, periods and limits (defaults from the settings).
        parent_pid: When set (``mcgip serve --with-worker``), also stop when that process exits.
    """
    configure_log_format()
    worker = Worker(settings, options)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: worker.stop.set())
    if parent_pid is not None:
        threading.Thread(
            target=_stop_when_orphaned, args=(worker, parent_pid), name="parent-watch", daemon=True
        ).start()
    logger.info("worker %s started; database %s", worker.id, settings.resolved_database_url.split("@")[-1])
    worker.run()
    logger.info("worker %s stopped", worker.id)
