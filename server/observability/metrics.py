"""``GET /metrics``: Prometheus text computed from the database at scrape time.

Reading the numbers from the database (instead of in-process counters) makes every web process
report the same totals, including work done by workers on other hosts.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from server.auth.scopes import public_route
from server.db import Database
from server.jobs.queue import as_utc
from server.models import GazeChunk, Job, JobState, ReadingSession, WorkerHeartbeat, utcnow

router = APIRouter(tags=["observability"])

#: Job duration histogram buckets (seconds): quick mining jobs up to multi-hour training runs.
DURATION_BUCKETS = (1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 12 * 3600)
#: A worker that has not beaten for this long is not counted as alive.
WORKER_ALIVE_S = 30.0


class DatabaseCollector(Collector):
    """Collects ingest, session, queue, job and worker figures with a few aggregate queries."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily | HistogramMetricFamily]:
        now = utcnow()
        with self.db.session() as session:
            samples = session.scalar(select(func.coalesce(func.sum(ReadingSession.sample_count), 0))) or 0
            chunks = session.scalar(select(func.count()).select_from(GazeChunk)) or 0
            recent = session.execute(
                select(func.count(), func.coalesce(func.sum(GazeChunk.n_samples), 0)).where(
                    GazeChunk.received_at >= now - timedelta(seconds=60)
                )
            ).one()
            by_status = session.execute(
                select(ReadingSession.status, func.count()).group_by(ReadingSession.status)
            )
            queue_rows = session.execute(
                select(Job.kind, Job.state, func.count()).group_by(Job.kind, Job.state)
            ).all()
            finished = session.execute(
                select(Job.kind, Job.started_at, Job.finished_at).where(
                    Job.state.in_([JobState.succeeded, JobState.failed]),
                    Job.started_at.is_not(None),
                    Job.finished_at.is_not(None),
                )
            ).all()
            workers = session.execute(
                select(WorkerHeartbeat.id, WorkerHeartbeat.heartbeat_at).where(
                    WorkerHeartbeat.stopped_at.is_(None)
                )
            ).all()

        yield CounterMetricFamily("mcgip_gaze_samples", "Gaze samples stored", value=float(samples))
        yield CounterMetricFamily("mcgip_gaze_chunks", "Gaze chunks (frames) stored", value=float(chunks))
        rate = GaugeMetricFamily(
            "mcgip_gaze_ingest_samples_per_second", "Gaze samples stored per second, last minute"
        )
        rate.add_metric([], float(recent[1]) / 60.0)
        yield rate
        sessions = GaugeMetricFamily(
            "mcgip_reading_sessions", "Reading sessions by status", labels=["status"]
        )
        for status, n in by_status:
            sessions.add_metric([str(getattr(status, "value", status))], float(n))
        yield sessions
        depth = GaugeMetricFamily("mcgip_job_queue_depth", "Queued or running jobs", labels=["kind", "state"])
        totals = CounterMetricFamily("mcgip_jobs", "Jobs by kind and state", labels=["kind", "state"])
        for kind, state, n in queue_rows:
            value = JobState(state).value
            totals.add_metric([kind, value], float(n))
            if value in ("queued", "running"):
                depth.add_metric([kind, value], float(n))
        yield depth
        yield totals
        yield _durations(finished)
        beats = GaugeMetricFamily(
            "mcgip_worker_last_heartbeat_timestamp_seconds",
            "Last heartbeat of each worker",
            labels=["worker"],
        )
        alive = 0
        for worker_id, at in workers:
            stamp = as_utc(at)
            assert stamp is not None
            beats.add_metric([worker_id], stamp.timestamp())
            alive += (now - stamp).total_seconds() <= WORKER_ALIVE_S
        yield beats
        live = GaugeMetricFamily(
            "mcgip_workers_alive", f"Workers with a heartbeat in the last {WORKER_ALIVE_S:.0f} s"
        )
        live.add_metric([], float(alive))
        yield live


def _durations(rows: Sequence[Any]) -> HistogramMetricFamily:
    per_kind: dict[str, list[float]] = {}
    for kind, started, finished in rows:
        start, end = as_utc(started), as_utc(finished)
        if start is not None and end is not None:
            per_kind.setdefault(kind, []).append(max(0.0, (end - start).total_seconds()))
    family = HistogramMetricFamily(
        "mcgip_job_duration_seconds", "Wall time of finished jobs", labels=["kind"]
    )
    for kind, values in sorted(per_kind.items()):
        buckets = [(str(b), float(sum(v <= b for v in values))) for b in DURATION_BUCKETS]
        buckets.append(("+Inf", float(len(values))))
        family.add_metric([kind], buckets, sum_value=sum(values))
    return family


def _registry(request: Request) -> CollectorRegistry:
    state = request.app.state
    if getattr(state, "metrics_registry", None) is None:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(DatabaseCollector(state.ctx.db))
        state.metrics_registry = registry
    registry_: CollectorRegistry = state.metrics_registry
    return registry_


@router.get("/metrics", response_class=Response, include_in_schema=False, dependencies=[public_route()])
def metrics(request: Request) -> Response:
    """Prometheus text format (no authentication: aggregate counts only, no identifiers or PHI)."""
    return Response(generate_latest(_registry(request)), media_type=CONTENT_TYPE_LATEST)
