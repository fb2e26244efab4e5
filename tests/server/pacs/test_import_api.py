"""Queuing a PACS import over the jobs API: admins only, parameters checked with the field named."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from server.db import Database
from tests.server.pacs.data import make_dataset


def test_admin_queues_an_import_and_bad_parameters_are_422(
    app_client: TestClient, auth: Callable[[str], dict[str, str]], db: Database
) -> None:
    dataset_id = make_dataset(db)
    body = {
        "kind": "pacs-import",
        "dataset_id": dataset_id,
        "params": {"url": "http://pacs.example:8042/dicom-web/", "modality": "ct", "date_from": "2020-01-01"},
    }
    created = app_client.post("/api/jobs", json=body, headers=auth("admin"))
    assert created.status_code == 201, created.text
    assert created.json()["params"] == {
        "url": "http://pacs.example:8042/dicom-web",
        "modality": "CT",
        "date_from": "2020-01-01",
        "study_uids": [],
    }
    assert app_client.post("/api/jobs", json=body, headers=auth("alice")).status_code == 403

    bad: list[tuple[dict[str, object], str]] = [
        ({"url": "http://user:pw@pacs.example/dicom-web"}, "url"),
        ({"url": "ftp://pacs.example/"}, "url"),
        ({"study_uids": ["not-a-uid"]}, "study_uids"),
        ({"modality": "c t"}, "modality"),
        ({"date_from": "2021-01-01", "date_to": "2020-01-01"}, "date_to"),
        ({"colour": "blue"}, "colour"),
    ]
    for params, field in bad:
        response = app_client.post("/api/jobs", json={**body, "params": params}, headers=auth("admin"))
        assert response.status_code == 422, (params, response.text)
        assert field in response.text, response.text
    no_dataset = app_client.post("/api/jobs", json={**body, "dataset_id": None}, headers=auth("admin"))
    assert no_dataset.status_code == 422 and "dataset_id" in no_dataset.text
