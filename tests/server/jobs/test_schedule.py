"""Retrain policies, embedding refresh and the policy API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from server.db import Database
from server.jobs import queue, schedule
from server.models import Dataset, Job, JobState, ModelVersion, ReadingSession, SessionStatus, utcnow
from server.settings import Settings
from server.storage import BlobStore
from tests.conftest import Users
from tests.server.jobs.models_support import make_model_version
from tests.server.worker.data import TinyDataset, make_dataset


@pytest.fixture
def data(db: Database, settings: Settings, users: Users) -> TinyDataset:
    return make_dataset(db, BlobStore(settings.blob_dir), users.reader, n_cases=4)


def set_policy(db: Database, dataset_id: int, **policy: Any) -> None:
    with db.session() as session:
        dataset = session.get(Dataset, dataset_id)
        assert dataset is not None
        dataset.settings = {**dataset.settings, "retrain": {"enabled": True, **policy}}


def finish_sessions(db: Database, case_id: int, reader_id: int, n: int) -> None:
    with db.session() as session:
        for _ in range(n):
            session.add(
                ReadingSession(
                    case_id=case_id,
                    reader_id=reader_id,
                    source="mouse",
                    status=SessionStatus.finished,
                    finished_at=utcnow(),
                )
            )


def retrains(db: Database) -> list[Job]:
    with db.session() as session:
        return list(session.scalars(select(Job).where(Job.kind == "retrain").order_by(Job.id)))


def test_new_sessions_policy_triggers_one_retrain(db: Database, data: TinyDataset, users: Users) -> None:
    set_policy(db, data.dataset_id, min_new_sessions=2, config={"train": {"steps": 5}})
    finish_sessions(db, data.case_ids[0], users.reader.id, 1)
    schedule.tick(db)
    assert retrains(db) == []
    finish_sessions(db, data.case_ids[1], users.reader.id, 1)
    schedule.tick(db)
    schedule.tick(db)  # still running/queued: no second job
    jobs = retrains(db)
    assert len(jobs) == 1
    assert jobs[0].params["trigger"] == {"schedule": ["new_sessions"]}
    assert jobs[0].params["config"] == {"train": {"steps": 5}}


def test_policy_counts_since_the_last_model_and_respects_cooldown(
    db: Database, settings: Settings, data: TinyDataset, users: Users
) -> None:
    set_policy(db, data.dataset_id, min_new_sessions=1, cooldown_minutes=0)
    finish_sessions(db, data.case_ids[0], users.reader.id, 1)
    schedule.tick(db)
    job = retrains(db)[0]
    assert queue.claim(db, "w", frozenset({"retrain"})) is not None
    with db.session() as session:
        assert queue.complete(session, job.id, "w")
    make_model_version(db, BlobStore(settings.blob_dir), data.dataset_id)  # created after the session
    schedule.tick(db)
    assert len(retrains(db)) == 1  # nothing new since the model
    finish_sessions(db, data.case_ids[1], users.reader.id, 1)
    set_policy(db, data.dataset_id, min_new_sessions=1, cooldown_minutes=60)
    schedule.tick(db)
    assert len(retrains(db)) == 1  # cooling down after the last retrain
    set_policy(db, data.dataset_id, min_new_sessions=1, cooldown_minutes=0)
    schedule.tick(db)
    assert len(retrains(db)) == 2


def test_interval_and_require_all(db: Database, data: TinyDataset, users: Users) -> None:
    set_policy(db, data.dataset_id, interval_hours=24, min_new_positives=50, require_all=True)
    finish_sessions(db, data.case_ids[0], users.reader.id, 1)
    schedule.tick(db)
    assert retrains(db) == []  # interval holds (no model yet) but 2 positives < 50
    set_policy(db, data.dataset_id, interval_hours=24, min_new_positives=2, require_all=True)
    schedule.tick(db)
    assert retrains(db)[0].params["trigger"] == {"schedule": ["interval", "new_positives"]}


def test_disabled_or_invalid_policy_does_nothing(db: Database, data: TinyDataset, users: Users) -> None:
    finish_sessions(db, data.case_ids[0], users.reader.id, 3)
    set_policy(db, data.dataset_id, min_new_sessions=1, enabled=False)
    schedule.tick(db)
    set_policy(db, data.dataset_id, min_new_sessions=0)  # invalid: ignored with a warning
    schedule.tick(db)
    assert retrains(db) == []


def test_active_model_without_embeddings_gets_one_embed_job(
    db: Database, settings: Settings, data: TinyDataset
) -> None:
    model_id = make_model_version(db, BlobStore(settings.blob_dir), data.dataset_id)
    schedule.tick(db)
    with db.session() as session:
        assert session.scalars(select(Job).where(Job.kind == "embed")).all() == []
        session.get(ModelVersion, model_id).is_active = True  # type: ignore[union-attr]
    schedule.tick(db)
    schedule.tick(db)
    with db.session() as session:
        jobs = session.scalars(select(Job).where(Job.kind == "embed")).all()
    assert [(j.params, j.state) for j in jobs] == [({"model_id": model_id}, JobState.queued)]


def test_policy_api_validates_and_stores(
    app_client: TestClient, auth: Callable[[str], dict[str, str]]
) -> None:
    ds = app_client.post(
        "/api/datasets", json={"name": "p", "label_set": ["a", "b"]}, headers=auth("admin")
    ).json()
    url = f"/api/datasets/{ds['id']}/retrain-policy"
    assert app_client.get(url, headers=auth("admin")).json()["enabled"] is False
    bad = app_client.put(url, json={"enabled": True, "config": {"optim": {"lr": -1}}}, headers=auth("admin"))
    assert bad.status_code == 422
    assert ["body", "params", "config", "optim", "lr"] in [e["loc"] for e in bad.json()["detail"]]
    unknown = app_client.put(url, json={"enabeld": True}, headers=auth("admin"))
    assert unknown.status_code == 422 and unknown.json()["detail"][0]["loc"] == ["body", "enabeld"]
    ok = app_client.put(url, json={"enabled": True, "min_new_sessions": 3}, headers=auth("admin"))
    assert ok.status_code == 200
    stored = app_client.get(url, headers=auth("admin")).json()
    assert stored["enabled"] and stored["min_new_sessions"] == 3
    assert app_client.put(url, json={"enabled": False}, headers=auth("alice")).status_code == 403
