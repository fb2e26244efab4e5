"""POST /api/models/{version}/predict: probabilities, access rules, errors, the bounded pool."""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import Callable

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from scipy.special import softmax
from sqlalchemy import select

from server.app import create_app
from server.db import Database
from server.models import Assignment, StoredImage
from server.pacs.results import _predictions as pacs_predictions
from server.registry.pool import PoolFull, PredictPool
from server.settings import Settings
from server.storage import BlobStore
from tests.conftest import Users, token_for
from tests.server.imaging.helpers import bundled_bytes
from tests.server.jobs.models_support import (
    CLASSES,
    SIZE,
    TEMPERATURE,
    diagnosis_weights,
    make_diagnosis_version,
)
from tests.server.worker.data import TinyDataset, make_dataset
from trainer.imaging import PreprocessSpec, model_input, read_values

Auth = Callable[[str], dict[str, str]]


@pytest.fixture
def data(db: Database, settings: Settings, users: Users) -> TinyDataset:
    made = make_dataset(db, BlobStore(settings.blob_dir), users.reader2, n_cases=4)
    with db.session() as session:
        session.add(Assignment(case_id=made.case_ids[0], reader_id=users.reader.id))
    return made


@pytest.fixture
def model_id(db: Database, settings: Settings, data: TinyDataset) -> int:
    return make_diagnosis_version(db, BlobStore(settings.blob_dir), data.dataset_id, active=True)


def expected(values: np.ndarray, invert: bool = False) -> np.ndarray:
    """The tiny graph in numpy on the shared preprocessing: softmax((pool(x) W H + b) / T)."""
    x = model_input(values, PreprocessSpec(size=SIZE), invert=invert)[0]
    pooled = x.reshape(4, 4, 4, 4).mean(axis=(1, 3)).reshape(-1)
    w, h, b = diagnosis_weights()
    return softmax(((pooled @ w) @ h + b) / TEMPERATURE)


def png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def test_case_prediction_matches_the_graph_on_shared_preprocessing(
    app_client: TestClient, auth: Auth, model_id: int, data: TinyDataset, settings: Settings
) -> None:
    case_id = data.case_ids[1]
    r = app_client.post(f"/api/models/{model_id}/predict", json={"case_id": case_id}, headers=auth("admin"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model_version"] == model_id and body["case_id"] == case_id
    assert set(body["probabilities"]) == set(CLASSES)
    values, _ = read_values(BlobStore(settings.blob_dir).path(f"images/{case_id}/pixels16.png"))
    want = expected(values)
    got = np.array([body["probabilities"][c] for c in CLASSES])
    assert np.abs(got - want).max() <= 1e-5
    assert body["label"] == CLASSES[int(np.argmax(want))]
    assert (
        "temperature-scaled (T=1.70)" in body["calibration"]
        and body["clinical_use"] == "NOT FOR CLINICAL USE"
    )
    active = app_client.post("/api/models/active/predict", json={"case_id": case_id}, headers=auth("admin"))
    assert active.status_code == 200 and active.json()["probabilities"] == body["probabilities"]
    batch = app_client.post(
        f"/api/models/{model_id}/predict", json={"case_ids": data.case_ids[:3]}, headers=auth("admin")
    ).json()
    assert [p["case_id"] for p in batch["predictions"]] == data.case_ids[:3]
    assert batch["predictions"][1]["probabilities"] == body["probabilities"]


def test_readers_predict_only_on_their_assigned_cases(
    app_client: TestClient, auth: Auth, model_id: int, data: TinyDataset
) -> None:
    url = f"/api/models/{model_id}/predict"
    assert app_client.post(url, json={"case_id": data.case_ids[0]}, headers=auth("alice")).status_code == 200
    assert app_client.post(url, json={"case_id": data.case_ids[1]}, headers=auth("alice")).status_code == 404
    upload = app_client.post(
        url, files={"file": ("x.png", png(np.zeros((20, 20), np.uint8)))}, headers=auth("alice")
    )
    assert upload.status_code == 403 and "assigned" in upload.json()["detail"]
    plain = token_for(app_client, "alice", scope="read write")
    refused = app_client.post(
        url, json={"case_id": data.case_ids[0]}, headers={"Authorization": f"Bearer {plain}"}
    )
    assert refused.status_code == 403 and "'predict' scope" in refused.json()["detail"]
    assert app_client.post(url, json={"case_id": data.case_ids[0]}).status_code == 401


def test_uploads_png_jpeg_dicom_and_batches(
    app_client: TestClient, auth: Auth, model_id: int, data: TinyDataset
) -> None:
    url = f"/api/models/{model_id}/predict"
    image = (np.random.default_rng(0).random((40, 52)) * 4000).astype(np.uint16)
    r = app_client.post(url, files={"file": ("a.png", png(image))}, headers=auth("admin"))
    assert r.status_code == 200, r.text
    got = np.array([r.json()["probabilities"][c] for c in CLASSES])
    assert np.abs(got - expected(image)).max() <= 1e-5 and r.json()["filename"] == "a.png"
    files = [("file", ("a.png", png(image))), ("file", ("ct.dcm", bundled_bytes("CT_small.dcm")))]
    batch = app_client.post(url, files=files, headers=auth("admin"))
    assert batch.status_code == 200 and [p["filename"] for p in batch.json()["predictions"]] == [
        "a.png",
        "ct.dcm",
    ]
    active = app_client.post(
        "/api/models/active/predict",
        files={"file": ("a.png", png(image))},
        data={"dataset_id": str(data.dataset_id)},
        headers=auth("admin"),
    )
    assert active.status_code == 200
    no_dataset = app_client.post(
        "/api/models/active/predict", files={"file": ("a.png", png(image))}, headers=auth("admin")
    )
    assert no_dataset.status_code == 422 and "dataset" in no_dataset.json()["detail"]


def test_errors_name_the_problem(
    app_client: TestClient, auth: Auth, model_id: int, data: TinyDataset, db: Database, settings: Settings
) -> None:
    admin = auth("admin")
    url = f"/api/models/{model_id}/predict"
    assert app_client.post("/api/models/9999/predict", json={"case_id": 1}, headers=admin).status_code == 404
    assert app_client.post("/api/models/v1/predict", json={"case_id": 1}, headers=admin).status_code == 404
    no_head = make_diagnosis_version(
        db,
        BlobStore(settings.blob_dir),
        data.dataset_id,
        version=2,
        head=False,
        problems=["only one class is labelled"],
    )
    r = app_client.post(f"/api/models/{no_head}/predict", json={"case_id": data.case_ids[0]}, headers=admin)
    assert r.status_code == 409 and "no diagnosis head: only one class is labelled" in r.json()["detail"]
    assert (
        app_client.post(url, files={"file": ("x.txt", b"hello, not an image")}, headers=admin).status_code
        == 415
    )
    whole = png((np.random.default_rng(2).random((30, 30)) * 255).astype(np.uint8))
    truncated = whole[: len(whole) // 2]
    assert app_client.post(url, files={"file": ("t.png", truncated)}, headers=admin).status_code == 422
    assert app_client.post(url, json={"case_id": "x"}, headers=admin).status_code == 422
    assert app_client.post(url, json={"case_id": 1, "extra": 2}, headers=admin).status_code == 422
    assert (
        app_client.post(url, content=b"x", headers={**admin, "content-type": "text/plain"}).status_code == 415
    )
    many = app_client.post(url, json={"case_ids": list(range(1, 18))}, headers=admin)
    assert many.status_code == 422 and "at most 16" in many.json()["detail"]
    both = app_client.post(
        url, files={"file": ("a.png", png(np.zeros((9, 9), np.uint8)))}, data={"case_id": "1"}, headers=admin
    )
    assert both.status_code == 422


def test_oversize_is_413(settings: Settings, users: Users, db: Database, data: TinyDataset) -> None:
    model = make_diagnosis_version(db, BlobStore(settings.blob_dir), data.dataset_id, version=3)
    small = settings.model_copy(update={"max_upload_bytes": 2000, "max_image_pixels": 400})
    with TestClient(create_app(small), base_url="http://localhost") as client:
        headers = {"Authorization": f"Bearer {token_for(client, 'admin', scope='read write predict')}"}
        url = f"/api/models/{model}/predict"
        noise = (np.random.default_rng(1).random((60, 60)) * 255).astype(np.uint8)
        assert client.post(url, files={"file": ("big.png", png(noise))}, headers=headers).status_code == 413
        wide = np.zeros((30, 30), np.uint8)  # small file, too many pixels
        r = client.post(url, files={"file": ("wide.png", png(wide))}, headers=headers)
        assert r.status_code == 413


def test_full_queue_answers_503_with_retry_after(
    app_client: TestClient, auth: Auth, model_id: int, data: TinyDataset
) -> None:
    pool: PredictPool = app_client.app.state.ctx.predict_pool  # type: ignore[attr-defined]
    taken = 0
    while pool._slots.acquire(blocking=False):  # occupy every slot, as a burst of requests would
        taken += 1
    try:
        r = app_client.post(
            f"/api/models/{model_id}/predict", json={"case_id": data.case_ids[0]}, headers=auth("admin")
        )
        assert r.status_code == 503 and int(r.headers["retry-after"]) >= 1
    finally:
        for _ in range(taken):
            pool._slots.release()
    ok = app_client.post(
        f"/api/models/{model_id}/predict", json={"case_id": data.case_ids[0]}, headers=auth("admin")
    )
    assert ok.status_code == 200


def test_pool_bounds_admission_and_keeps_the_loop_free() -> None:
    pool = PredictPool(workers=1, capacity=2)
    release = threading.Event()

    async def scenario() -> list[object]:
        slow = [asyncio.ensure_future(pool.run(release.wait)) for _ in range(2)]
        await asyncio.sleep(0.05)
        with pytest.raises(PoolFull):
            await pool.run(lambda: 1)
        # The event loop still runs other work while both jobs hold the pool.
        ticks = 0
        for _ in range(5):
            await asyncio.sleep(0.001)
            ticks += 1
        assert ticks == 5 and pool.admitted == 2
        release.set()
        done = await asyncio.gather(*slow)
        assert pool.admitted == 0
        return [*done, await pool.run(lambda: "again")]

    assert asyncio.run(scenario()) == [True, True, "again"]
    pool.shutdown()


def test_openapi_documents_predict(app_client: TestClient) -> None:
    op = app_client.get("/openapi.json").json()["paths"]["/api/models/{version}/predict"]["post"]
    assert {"application/json", "multipart/form-data"} <= set(op["requestBody"]["content"])
    assert {"200", "404", "409", "413", "415", "422", "503"} <= set(op["responses"])


def test_pacs_results_score_a_case_as_the_predict_api_does(
    app_client: TestClient, auth: Auth, model_id: int, data: TinyDataset, settings: Settings, db: Database
) -> None:
    """A negative rescale slope shows high values dark: the SR's prediction must see the same image."""
    case_id = data.case_ids[2]
    with db.session() as session:
        image = session.scalars(select(StoredImage).where(StoredImage.case_id == case_id)).one()
        image.value_scale = -abs(image.value_scale)
    api = app_client.post("/api/models/active/predict", json={"case_id": case_id}, headers=auth("admin"))
    assert api.status_code == 200, api.text
    values, _ = read_values(BlobStore(settings.blob_dir).path(f"images/{case_id}/pixels16.png"))
    inverted = expected(values, invert=True)
    assert np.abs(inverted - expected(values)).max() > 1e-3  # the test can tell the two apart
    assert np.abs(np.array([api.json()["probabilities"][c] for c in CLASSES]) - inverted).max() <= 1e-5
    sent = pacs_predictions(db, BlobStore(settings.blob_dir), data.dataset_id, [case_id], 10**8)[case_id]
    assert sent.label == api.json()["label"]
    assert sent.probability == pytest.approx(api.json()["probabilities"][sent.label], abs=1e-6)
