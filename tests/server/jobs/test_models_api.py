"""Model registry API: listing, card, export (streamed, checksummed, audited), promotion, embeddings,
similar cases; and that readers cannot promote or export."""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
from collections.abc import Callable

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select

from server.db import Database
from server.models import Assignment, AuditLog, CaseEmbedding, Job, ModelVersion
from server.registry.artifacts import EXPORT_FILES
from server.settings import Settings
from server.storage import BlobStore
from server.worker.runner import Worker
from tests.conftest import Users, token_for
from tests.server.jobs.models_support import make_model_version, sample_evaluation
from tests.server.worker.data import TinyDataset, make_dataset

Auth = Callable[[str], dict[str, str]]


@pytest.fixture
def data(db: Database, settings: Settings, users: Users) -> TinyDataset:
    return make_dataset(db, BlobStore(settings.blob_dir), users.reader)


@pytest.fixture
def model_id(db: Database, settings: Settings, data: TinyDataset) -> int:
    return make_model_version(db, BlobStore(settings.blob_dir), data.dataset_id)


def test_list_get_and_card(app_client: TestClient, auth: Auth, model_id: int, data: TinyDataset) -> None:
    listed = app_client.get(
        "/api/models", params={"dataset_id": data.dataset_id}, headers=auth("admin")
    ).json()
    assert [m["id"] for m in listed] == [model_id]
    model = app_client.get(f"/api/models/{model_id}", headers=auth("alice")).json()
    assert model["version"] == 1 and sorted(model["exports"]) == sorted(EXPORT_FILES)
    card = app_client.get(f"/api/models/{model_id}/card", headers=auth("admin")).json()
    assert card["name"] == "tiny" and card["registry"]["checksums"] == model["checksums"]
    assert app_client.get("/api/models/9999", headers=auth("admin")).status_code == 404


def test_evaluation_contract(
    app_client: TestClient, auth: Auth, model_id: int, db: Database, settings: Settings, data: TinyDataset
) -> None:
    url = f"/api/models/{model_id}/evaluation"
    missing = app_client.get(url, headers=auth("admin"))
    assert missing.status_code == 404 and "no cross-validated evaluation" in missing.json()["detail"]
    evaluated = make_model_version(
        db, BlobStore(settings.blob_dir), data.dataset_id, version=2, evaluation=sample_evaluation()
    )
    body = app_client.get(f"/api/models/{evaluated}/evaluation", headers=auth("admin")).json()
    assert body["model_id"] == evaluated and body["version"] == 2
    assert body["n_cases"] == 60 and body["n_folds"] == 5 and body["status"] == "ok"
    assert set(body["conditions"]) == {"mcgip", "baseline"}
    assert set(body["conditions"]["mcgip"]["knn.accuracy"]) == {"value", "ci_low", "ci_high"}
    diff = body["differences"]["mcgip"]["knn.balanced_accuracy"]
    assert set(diff) == {"value", "ci_low", "ci_high", "p_value"} and diff["ci_low"] > 0
    assert body["verdict"] == "better"
    assert app_client.get("/api/models/9999/evaluation", headers=auth("admin")).status_code == 404


def test_export_streams_with_checksum_and_is_audited(
    app_client: TestClient, auth: Auth, model_id: int, db: Database
) -> None:
    response = app_client.get(
        f"/api/models/{model_id}/export", params={"format": "onnx"}, headers=auth("admin")
    )
    assert response.status_code == 200
    assert response.headers["x-checksum-sha256"] == hashlib.sha256(response.content).hexdigest()
    assert "attachment" in response.headers["content-disposition"]
    with db.session() as session:
        rows = session.scalars(select(AuditLog).where(AuditLog.action == "model_export")).all()
    assert [(r.target_id, r.detail["format"]) for r in rows] == [(str(model_id), "onnx")]
    bad = app_client.get(f"/api/models/{model_id}/export", params={"format": "pickle"}, headers=auth("admin"))
    assert bad.status_code == 422


def test_export_needs_the_export_scope_even_for_admins(
    app_client: TestClient, auth: Auth, model_id: int, users: Users
) -> None:
    url = f"/api/models/{model_id}/export"
    assert app_client.get(url, params={"format": "onnx"}, headers=auth("alice")).status_code == 403
    plain = token_for(app_client, "admin", scope="read write")
    refused = app_client.get(url, params={"format": "onnx"}, headers={"Authorization": f"Bearer {plain}"})
    assert refused.status_code == 403 and "'export' scope" in refused.json()["detail"]
    token = token_for(app_client, "admin", scope="read export")
    scoped = app_client.get(
        url, params={"format": "safetensors"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert scoped.status_code == 200 and scoped.content == b"safetensors bytes"


def test_tampered_export_is_refused(
    app_client: TestClient, auth: Auth, model_id: int, db: Database, settings: Settings
) -> None:
    with db.session() as session:
        folder = session.get(ModelVersion, model_id).artifact_dir  # type: ignore[union-attr]
    BlobStore(settings.blob_dir).write(f"{folder}/{EXPORT_FILES['torchscript']}", b"evil")
    response = app_client.get(
        f"/api/models/{model_id}/export", params={"format": "torchscript"}, headers=auth("admin")
    )
    assert response.status_code == 409 and "checksum" in response.json()["detail"]


def test_promote_and_roll_back(
    app_client: TestClient, auth: Auth, model_id: int, db: Database, settings: Settings, data: TinyDataset
) -> None:
    newer = make_model_version(db, BlobStore(settings.blob_dir), data.dataset_id, version=2, seed=1)
    assert app_client.post(f"/api/models/{newer}/promote", headers=auth("alice")).status_code == 403
    assert app_client.post(f"/api/models/{newer}/promote", headers=auth("admin")).json()["is_active"]
    rolled = app_client.post(f"/api/models/{model_id}/promote", headers=auth("admin"))
    assert rolled.status_code == 200 and rolled.json()["is_active"]
    models = {m["id"]: m["is_active"] for m in app_client.get("/api/models", headers=auth("admin")).json()}
    assert models == {model_id: True, newer: False}
    with db.session() as session:
        embeds = session.scalars(select(Job).where(Job.kind == "embed").order_by(Job.id)).all()
        assert [j.params["model_id"] for j in embeds] == [newer, model_id]


def _png(seed: int) -> bytes:
    pixels = (np.random.default_rng(seed).random((40, 56)) * 60000).astype(np.uint16)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def test_embed_endpoint_returns_normalised_vector(
    app_client: TestClient, auth: Auth, model_id: int, data: TinyDataset
) -> None:
    files = {"file": ("x.png", _png(3), "image/png")}
    response = app_client.post(f"/api/models/{model_id}/embed", files=files, headers=auth("alice"))
    assert response.status_code == 200, response.text
    vector = np.asarray(response.json()["embedding"])
    assert response.json()["dim"] == 4 and abs(np.linalg.norm(vector) - 1) < 1e-5
    again = app_client.post(
        f"/api/models/{model_id}/embed",
        files={"file": ("x.png", _png(3), "image/png")},
        headers=auth("admin"),
    ).json()["embedding"]
    assert np.allclose(vector, again)
    other = app_client.post(
        f"/api/models/{model_id}/embed",
        files={"file": ("y.png", _png(4), "image/png")},
        headers=auth("admin"),
    ).json()["embedding"]
    assert not np.allclose(vector, other)
    junk = app_client.post(
        f"/api/models/{model_id}/embed",
        files={"file": ("z.png", b"nope", "image/png")},
        headers=auth("admin"),
    )
    assert junk.status_code == 422


def test_similar_cases_after_promotion_respect_visibility(
    app_client: TestClient,
    auth: Auth,
    model_id: int,
    db: Database,
    settings: Settings,
    data: TinyDataset,
    users: Users,
) -> None:
    query = data.case_ids[0]
    assert app_client.get(f"/api/cases/{query}/similar", headers=auth("admin")).json()["ready"] is False
    app_client.post(f"/api/models/{model_id}/promote", headers=auth("admin"))
    assert Worker(settings, db=db).run_once(frozenset({"embed"})) is not None
    with db.session() as session:
        assert len(session.scalars(select(CaseEmbedding)).all()) == len(data.case_ids)
        # alice may see the query case and two others.
        for case_id in data.case_ids[:3]:
            session.add(Assignment(case_id=case_id, reader_id=users.reader.id))
    admin_view = app_client.get(f"/api/cases/{query}/similar", params={"k": 10}, headers=auth("admin")).json()
    assert admin_view["ready"] and admin_view["model_id"] == model_id
    items = admin_view["items"]
    assert len(items) == len(data.case_ids) - 1 and query not in [i["case_id"] for i in items]
    sims = [i["similarity"] for i in items]
    assert sims == sorted(sims, reverse=True) and all(-1.0001 <= s <= 1.0001 for s in sims)
    assert {i["label"] for i in items} == {"a", "b"}
    reader_view = app_client.get(
        f"/api/cases/{query}/similar", params={"k": 10}, headers=auth("alice")
    ).json()
    assert sorted(i["case_id"] for i in reader_view["items"]) == sorted(data.case_ids[1:3])
    assert all(i["reference_label"] is None for i in reader_view["items"])
    hidden = app_client.get(f"/api/cases/{data.case_ids[5]}/similar", headers=auth("alice"))
    assert hidden.status_code == 404


def test_importing_the_web_app_does_not_import_torch() -> None:
    code = (
        "import sys\n"
        "import server.app\n"
        "from server.settings import Settings\n"
        "server.app.create_app(Settings(data_dir=__import__('tempfile').mkdtemp()))\n"
        "import server.jobs.routes, server.registry.routes, server.observability.metrics\n"
        "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if m.startswith('torch'))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
