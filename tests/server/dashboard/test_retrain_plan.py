"""POST /api/dashboard/retrain-plan: the training form's fields checked server-side, errors per field,
and the planned job accepted by POST /api/jobs."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from server.db import Database
from tests.conftest import Users
from tests.server.dashboard.arrange import make_dataset
from trainer.data.snapshot import assign_split

Auth = Callable[[str], dict[str, str]]


@pytest.fixture
def dataset(db: Database, users: Users) -> tuple[int, list[int]]:
    return make_dataset(db, "plan", 40, settings={"threshold": 0.9}, with_images=True)


def form(dataset_id: int, **fields: Any) -> dict[str, Any]:
    return {
        "dataset_id": dataset_id,
        "method": "simclr",
        "backbone": "resnet18",
        "metric": "dhash",
        "threshold": 0.92,
        "epochs": 3,
        **fields,
    }


def test_plan_translates_the_form_and_jobs_accepts_it(
    app_client: TestClient, auth: Auth, dataset: tuple[int, list[int]]
) -> None:
    ds, case_ids = dataset
    body = form(ds, advanced={"train": {"batch_size": 8, "grad_accum": 2}, "data": {"image_size": 32}})
    response = app_client.post("/api/dashboard/retrain-plan", json=body, headers=auth("admin"))
    assert response.status_code == 200, response.text
    plan = response.json()
    # The trainer's fixed split decides which cases train; one epoch is one pass over them.
    train_cases = sum(assign_split(str(cid)) == "train" for cid in case_ids)
    assert 0 < train_cases < len(case_ids)
    assert plan["training_cases"] == train_cases and plan["images_per_step"] == 16
    assert plan["steps"] == math.ceil(3 * train_cases / 16)
    job = plan["job"]
    assert job["kind"] == "retrain" and job["dataset_id"] == ds and job["params"]["metric"] == "dhash"
    config = job["params"]["config"]
    assert config["method"]["name"] == "simclr" and config["model"]["backbone"] == "resnet18"
    assert config["gaze"]["min_score"] == 0.92 and config["train"]["steps"] == plan["steps"]
    assert config["data"]["image_size"] == 32 and config["train"]["batch_size"] == 8
    queued = app_client.post("/api/jobs", json=job, headers=auth("admin"))
    assert queued.status_code == 201, queued.text
    assert queued.json()["params"]["config"] == config


def test_test_cases_count_when_the_config_trains_on_them(
    app_client: TestClient, auth: Auth, dataset: tuple[int, list[int]]
) -> None:
    ds, case_ids = dataset
    body = form(ds, epochs=2, advanced={"data": {"train_on_test_images": True}, "train": {"batch_size": 10}})
    plan = app_client.post("/api/dashboard/retrain-plan", json=body, headers=auth("admin")).json()
    assert plan["training_cases"] == len(case_ids) and plan["steps"] == 8


@pytest.mark.parametrize(
    ("fields", "loc", "words"),
    [
        ({"epochs": 0}, ["body", "epochs"], "greater than or equal to 1"),
        ({"epochs": "many"}, ["body", "epochs"], "integer"),
        ({"method": "swav"}, ["body", "method"], "moco_v2"),
        ({"backbone": "vit"}, ["body", "backbone"], "resnet18"),
        ({"metric": "euclid"}, ["body", "metric"], "moments"),
        ({"threshold": 1.5}, ["body", "threshold"], "less than or equal to 1"),
        # Below the dataset's mining threshold (0.9) the filter would change nothing.
        ({"threshold": 0.5}, ["body", "threshold"], "0.9"),
        ({"advanced": {"train": {"batch_size": 1}}}, ["body", "advanced", "train", "batch_size"], "2"),
        ({"advanced": {"trian": {}}}, ["body", "advanced", "trian"], "Extra inputs"),
        # Warm-up longer than the whole run: reported on the epochs that set the run's length.
        ({"epochs": 1, "advanced": {"optim": {"warmup_steps": 50}}}, ["body", "epochs"], "warmup_steps"),
    ],
)
def test_errors_name_the_form_field(
    app_client: TestClient,
    auth: Auth,
    dataset: tuple[int, list[int]],
    fields: dict[str, Any],
    loc: list[str],
    words: str,
) -> None:
    ds, _ = dataset
    response = app_client.post("/api/dashboard/retrain-plan", json=form(ds, **fields), headers=auth("admin"))
    assert response.status_code == 422, response.text
    errors = response.json()["detail"]
    assert any(err["loc"] == loc and words in err["msg"] for err in errors), errors


def test_plan_needs_an_admin_and_a_dataset(
    app_client: TestClient, auth: Auth, dataset: tuple[int, list[int]]
) -> None:
    ds, _ = dataset
    assert (
        app_client.post("/api/dashboard/retrain-plan", json=form(ds), headers=auth("alice")).status_code
        == 403
    )
    missing = app_client.post("/api/dashboard/retrain-plan", json=form(424242), headers=auth("admin"))
    assert missing.status_code == 404
