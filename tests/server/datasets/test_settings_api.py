"""Dataset settings over HTTP: typed on create, merge-patched and validated on PATCH, read by the worker."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from server.db import Database
from server.models import Dataset
from server.worker.handlers.gaze import feature_config, mining_config

Auth = Callable[[str], dict[str, str]]


def _create(client: TestClient, auth: Auth, **settings: object) -> dict[str, object]:
    body = {"name": "ds", "label_set": ["a", "b"], "settings": settings}
    response = client.post("/api/datasets", json=body, headers=auth("admin"))
    assert response.status_code == 201, response.text
    return response.json()


def test_create_returns_complete_settings(app_client: TestClient, auth: Auth) -> None:
    ds = _create(app_client, auth, metric="dhash")
    settings = ds["settings"]
    assert isinstance(settings, dict)
    assert settings["metric"] == "dhash" and settings["threshold"] == 0.9
    assert settings["features"]["grid"] == [32, 32] and settings["retrain"]["enabled"] is False


def test_create_rejects_unknown_and_out_of_bounds_settings(app_client: TestClient, auth: Auth) -> None:
    for settings, loc in (
        ({"treshold": 0.8}, ["body", "settings", "treshold"]),
        ({"threshold": 2}, ["body", "settings", "threshold"]),
    ):
        body = {"name": "ds", "label_set": ["a", "b"], "settings": settings}
        response = app_client.post("/api/datasets", json=body, headers=auth("admin"))
        assert response.status_code == 422
        assert loc in [e["loc"] for e in response.json()["detail"]]
    assert app_client.get("/api/datasets", headers=auth("admin")).json() == []


def test_patch_merges_one_key_and_keeps_the_others(app_client: TestClient, auth: Auth, db: Database) -> None:
    ds = _create(app_client, auth, metric="dhash", threshold=0.95, features={"grid": [16, 16]})
    url = f"/api/datasets/{ds['id']}"
    r = app_client.patch(url, json={"settings": {"features": {"sigma_px": 12}}}, headers=auth("admin"))
    assert r.status_code == 200, r.text
    settings = r.json()["settings"]
    assert settings["metric"] == "dhash" and settings["threshold"] == 0.95
    assert settings["features"]["grid"] == [16, 16] and settings["features"]["sigma_px"] == 12
    # null resets a key to its default; the description is untouched by a settings patch
    r = app_client.patch(url, json={"settings": {"threshold": None}}, headers=auth("admin"))
    assert r.json()["settings"]["threshold"] == 0.9 and r.json()["description"] == ""
    r = app_client.patch(url, json={"description": "d"}, headers=auth("admin"))
    assert r.json()["description"] == "d" and r.json()["settings"]["metric"] == "dhash"
    # the worker reads the same settings
    with db.session() as session:
        dataset = session.get(Dataset, ds["id"])
        assert dataset is not None
        assert mining_config(dataset).metric.metric == "dhash" and mining_config(dataset).threshold == 0.9
        assert feature_config(dataset).grid == (16, 16) and feature_config(dataset).sigma_px == 12


def test_patch_validates_the_result_and_stores_nothing_on_error(app_client: TestClient, auth: Auth) -> None:
    ds = _create(app_client, auth, metric="tima")
    url = f"/api/datasets/{ds['id']}"
    for patch, loc in (
        ({"metrc": "dhash"}, ["body", "settings", "metrc"]),
        ({"features": {"grid": [0, 4]}}, ["body", "settings", "features", "grid", 0]),
        (
            {"retrain": {"config": {"optim": {"lr": -1}}}},
            ["body", "settings", "retrain", "config", "optim", "lr"],
        ),
    ):
        r = app_client.patch(url, json={"settings": patch}, headers=auth("admin"))
        assert r.status_code == 422, r.text
        assert loc in [e["loc"] for e in r.json()["detail"]]
    assert app_client.get(url, headers=auth("admin")).json()["settings"] == ds["settings"]
    assert (
        app_client.patch("/api/datasets/999", json={"description": "x"}, headers=auth("admin")).status_code
        == 404
    )


def test_retrain_policy_put_keeps_other_settings(app_client: TestClient, auth: Auth) -> None:
    ds = _create(app_client, auth, metric="correlation")
    r = app_client.put(
        f"/api/datasets/{ds['id']}/retrain-policy", json={"enabled": True}, headers=auth("admin")
    )
    assert r.status_code == 200
    settings = app_client.get(f"/api/datasets/{ds['id']}", headers=auth("admin")).json()["settings"]
    assert settings["metric"] == "correlation" and settings["retrain"]["enabled"] is True
