"""``GET /metrics`` figures come from the database; every response carries a request id."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from server.db import Database
from server.jobs import queue
from server.jobs.kinds import EmbedSpec, PairsSpec
from server.models import WorkerHeartbeat
from server.observability.logs import JsonFormatter, install_record_factory, job_context


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_report_queue_jobs_and_workers(
    app_client: TestClient, db: Database, auth: Callable[[str], dict[str, str]]
) -> None:
    for _ in range(2):
        queue.submit(db, PairsSpec())
    done = queue.submit(db, EmbedSpec(model_id=1))
    queue.claim(db, "w1", frozenset({"embed"}))
    with db.session() as session:
        queue.complete(session, done.id, "w1")
        session.add(WorkerHeartbeat(id="host:1:abc", hostname="host", pid=1))
    response = app_client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    samples = _samples(response.text)
    assert samples[("mcgip_job_queue_depth", (("kind", "pairs"), ("state", "queued")))] == 2
    assert samples[("mcgip_jobs_total", (("kind", "embed"), ("state", "succeeded")))] == 1
    assert samples[("mcgip_job_duration_seconds_count", (("kind", "embed"),))] == 1
    assert samples[("mcgip_workers_alive", ())] == 1
    assert samples[("mcgip_worker_last_heartbeat_timestamp_seconds", (("worker", "host:1:abc"),))] > 0
    assert samples[("mcgip_gaze_samples_total", ())] == 0


def test_request_id_is_echoed_or_made(app_client: TestClient) -> None:
    given = app_client.get("/api/health", headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    made = app_client.get("/api/health", headers={"X-Request-ID": "bad id\nwith newline"})
    assert made.headers["x-request-id"] != "bad id\nwith newline" and len(made.headers["x-request-id"]) == 32


def test_log_records_carry_job_ids(caplog: pytest.LogCaptureFixture) -> None:
    install_record_factory()
    logger = logging.getLogger("tests.observability")
    with caplog.at_level(logging.INFO), job_context(42):
        logger.info("inside")
    logger.info("outside")
    record = next(r for r in caplog.records if r.getMessage() == "inside")
    assert record.job_id == 42  # type: ignore[attr-defined]
    assert '"job_id": 42' in JsonFormatter().format(record)


def test_text_format_names_the_job() -> None:
    from server.observability.logs import ContextFormatter

    install_record_factory()
    with job_context(7):
        record = logging.getLogger("x").makeRecord("x", logging.INFO, "f", 1, "hello", (), None)
    assert "[job 7]: hello" in ContextFormatter().format(record)
