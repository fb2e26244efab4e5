"""Jobs REST API: submission with server-side validation, 409 on a second retrain, cancel, SSE."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from server.db import Database
from server.jobs import queue

Auth = Callable[[str], dict[str, str]]


@pytest.fixture
def dataset_id(app_client: TestClient, auth: Auth) -> int:
    response = app_client.post(
        "/api/datasets", json={"name": "jobs", "label_set": ["a", "b"]}, headers=auth("admin")
    )
    return int(response.json()["id"])


def test_admin_submits_lists_and_reads_a_job(app_client: TestClient, auth: Auth, dataset_id: int) -> None:
    body = {"kind": "retrain", "dataset_id": dataset_id, "params": {"config": {"train": {"steps": 3}}}}
    created = app_client.post("/api/jobs", json=body, headers=auth("admin"))
    assert created.status_code == 201, created.text
    job = created.json()
    assert job["state"] == "queued" and job["kind"] == "retrain" and job["dataset_id"] == dataset_id
    # The config is stored validated and complete, with defaults filled in.
    assert job["params"]["config"]["train"]["steps"] == 3
    assert job["params"]["config"]["method"]["name"] == "moco_v2"
    listed = app_client.get("/api/jobs", params={"kind": "retrain"}, headers=auth("admin")).json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == job["id"]
    assert app_client.get(f"/api/jobs/{job['id']}", headers=auth("admin")).json()["id"] == job["id"]
    assert app_client.get("/api/jobs/999999", headers=auth("admin")).status_code == 404


def test_readers_cannot_trigger_or_see_jobs(app_client: TestClient, auth: Auth, dataset_id: int) -> None:
    body = {"kind": "retrain", "dataset_id": dataset_id}
    assert app_client.post("/api/jobs", json=body, headers=auth("alice")).status_code == 403
    assert app_client.get("/api/jobs", headers=auth("alice")).status_code == 403


@pytest.mark.parametrize(
    ("params", "loc"),
    [
        ({"config": {"train": {"batch_size": 0}}}, ["body", "params", "config", "train", "batch_size"]),
        ({"config": {"method": {"name": "nope"}}}, ["body", "params", "config", "method", "name"]),
        ({"config": {"epochz": 3}}, ["body", "params", "config", "epochz"]),
        ({"confg": {}}, ["body", "params", "confg"]),
    ],
)
def test_training_config_errors_name_the_field(
    app_client: TestClient, auth: Auth, dataset_id: int, params: dict[str, object], loc: list[str]
) -> None:
    response = app_client.post(
        "/api/jobs",
        json={"kind": "retrain", "dataset_id": dataset_id, "params": params},
        headers=auth("admin"),
    )
    assert response.status_code == 422, response.text
    assert loc in [error["loc"] for error in response.json()["detail"]]


def test_bad_kind_and_missing_references(app_client: TestClient, auth: Auth, dataset_id: int) -> None:
    assert (
        app_client.post("/api/jobs", json={"kind": "mine-bitcoin"}, headers=auth("admin")).status_code == 422
    )
    assert app_client.post("/api/jobs", json={"kind": "retrain"}, headers=auth("admin")).status_code == 422
    missing = app_client.post(
        "/api/jobs", json={"kind": "pairs", "dataset_id": 424242}, headers=auth("admin")
    )
    assert missing.status_code == 404
    model = app_client.post(
        "/api/jobs", json={"kind": "embed", "params": {"model_id": 5}}, headers=auth("admin")
    )
    assert model.status_code == 404 and "model 5" in model.json()["detail"]


def test_second_retrain_gets_409_naming_the_running_job(
    app_client: TestClient, auth: Auth, dataset_id: int
) -> None:
    first = app_client.post(
        "/api/jobs", json={"kind": "retrain", "dataset_id": dataset_id}, headers=auth("admin")
    )
    second = app_client.post(
        "/api/jobs", json={"kind": "retrain", "dataset_id": dataset_id}, headers=auth("admin")
    )
    assert second.status_code == 409
    assert second.json()["job"]["id"] == first.json()["id"]
    assert str(first.json()["id"]) in second.json()["detail"]


def test_cancel_queued_job(app_client: TestClient, auth: Auth, dataset_id: int) -> None:
    job = app_client.post(
        "/api/jobs", json={"kind": "pairs", "dataset_id": dataset_id}, headers=auth("admin")
    ).json()
    cancelled = app_client.post(f"/api/jobs/{job['id']}/cancel", headers=auth("admin"))
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    assert app_client.post(f"/api/jobs/{job['id']}/cancel", headers=auth("alice")).status_code == 403


def _events(text: str) -> list[tuple[str, dict[str, object]]]:
    out = []
    for block in text.split("\n\n"):
        lines = dict(
            line.split(": ", 1) for line in block.splitlines() if ": " in line and not line.startswith(":")
        )
        if "event" in lines:
            out.append((lines["event"], json.loads(lines["data"])))
    return out


def test_sse_streams_progress_until_the_job_ends(
    app_client: TestClient,
    auth: Auth,
    dataset_id: int,
    settings,
    db: Database,
) -> None:
    job = app_client.post(
        "/api/jobs", json={"kind": "pairs", "dataset_id": dataset_id}, headers=auth("admin")
    ).json()
    claimed = queue.claim(db, "w1")
    assert claimed is not None
    queue.heartbeat(db, job["id"], "w1", progress=0.25, progress_info={"phase": "mining"})
    with db.session() as session:
        queue.complete(session, job["id"], "w1", result={"pairs": 3})
    with app_client.stream("GET", f"/api/jobs/{job['id']}/events", headers=auth("admin")) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        text = "".join(response.iter_text())
    events = _events(text)
    assert events[0][0] == "job" and events[0][1]["state"] == "succeeded"
    assert events[0][1]["result"] == {"pairs": 3}
    assert events[-1] == ("end", {"id": job["id"], "state": "succeeded"})
