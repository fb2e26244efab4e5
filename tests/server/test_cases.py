"""Datasets, case upload (PNG/JPEG/16-bit PNG/DICOM), images, paging, worklists, de-identification."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from pydicom.data import get_testdata_file
from sqlalchemy import select

from server.db import Database
from server.models import AuditLog, StoredImage
from server.settings import Settings
from tests.conftest import Users

Auth = Callable[[str], dict[str, str]]


def png_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def jpeg_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).convert("L").save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def gradient(h: int = 64, w: int = 80, dtype: type = np.uint8, top: int = 255) -> np.ndarray:
    return (np.linspace(0, top, h * w).reshape(h, w)).astype(dtype)


@pytest.fixture
def dataset_id(app_client: TestClient, auth: Auth) -> int:
    r = app_client.post(
        "/api/datasets",
        json={"name": "chest", "label_set": ["normal", "mass", "calc"], "image_kind": "structured"},
        headers=auth("admin"),
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def upload(
    client: TestClient,
    headers: dict[str, str],
    dataset_id: int,
    data: bytes,
    name: str = "f.bin",
    **form: str,
):
    return client.post(
        "/api/cases",
        files={"file": (name, data, "application/octet-stream")},
        data={"dataset_id": str(dataset_id), **form},
        headers=headers,
    )


def test_dataset_validation(app_client: TestClient, auth: Auth) -> None:
    r = app_client.post("/api/datasets", json={"name": "d", "label_set": ["a", "a"]}, headers=auth("admin"))
    assert r.status_code == 422 and "distinct" in str(r.json()["detail"])
    r = app_client.post(
        "/api/datasets", json={"name": "d", "label_set": ["a", "b"], "bogus": 1}, headers=auth("admin")
    )
    assert r.status_code == 422
    assert (
        app_client.post(
            "/api/datasets", json={"name": "d", "label_set": ["a", "b"]}, headers=auth("admin")
        ).status_code
        == 201
    )
    dup = app_client.post("/api/datasets", json={"name": "d", "label_set": ["a", "b"]}, headers=auth("admin"))
    assert dup.status_code == 409 and "already exists" in dup.json()["detail"]


@pytest.mark.parametrize(
    ("maker", "fmt", "bits"),
    [
        (lambda: png_bytes(gradient()), "png", 8),
        (lambda: jpeg_bytes(gradient()), "jpeg", 8),
        (lambda: png_bytes(gradient(dtype=np.uint16, top=4095)), "png", 16),
    ],
)
def test_upload_raster_formats(
    app_client: TestClient, auth: Auth, dataset_id: int, maker, fmt: str, bits: int
) -> None:
    r = upload(app_client, auth("admin"), dataset_id, maker(), name="image.dcm")  # name must not matter
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["image"]["format"] == fmt
    assert (body["image"]["width"], body["image"]["height"]) == (80, 64)
    assert body["image"]["bits_stored"] >= bits if bits == 8 else body["image"]["bits_stored"] > 8
    img = app_client.get(f"/api/cases/{body['id']}/image", headers=auth("admin"))
    assert img.status_code == 200 and img.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(img.content)).size == (80, 64)
    thumb = app_client.get(f"/api/cases/{body['id']}/thumbnail", headers=auth("admin"))
    assert thumb.status_code == 200


def test_sixteen_bit_pixels_round_trip(app_client: TestClient, auth: Auth, dataset_id: int) -> None:
    original = gradient(dtype=np.uint16, top=4095)
    case = upload(app_client, auth("admin"), dataset_id, png_bytes(original)).json()
    r = app_client.get(f"/api/cases/{case['id']}/pixels", headers=auth("admin"))
    assert r.status_code == 200
    stored = np.frombuffer(r.content, dtype="<u2").reshape(
        int(r.headers["X-Image-Height"]), int(r.headers["X-Image-Width"])
    )
    values = stored * float(r.headers["X-Value-Scale"]) + float(r.headers["X-Value-Offset"])
    np.testing.assert_allclose(values, original)


def test_windowed_rendering_changes_the_image(app_client: TestClient, auth: Auth, dataset_id: int) -> None:
    case = upload(
        app_client, auth("admin"), dataset_id, png_bytes(gradient(dtype=np.uint16, top=4095))
    ).json()
    narrow = app_client.get(f"/api/cases/{case['id']}/image?center=2000&width=10", headers=auth("admin"))
    pixels = np.asarray(Image.open(io.BytesIO(narrow.content)))
    # A 10-unit window around 2000 makes almost every pixel black or white.
    assert np.mean((pixels == 0) | (pixels == 255)) > 0.95
    bad = app_client.get(f"/api/cases/{case['id']}/image?center=2000&width=-1", headers=auth("admin"))
    assert bad.status_code == 422


def test_upload_dicom_and_download_deidentified(app_client: TestClient, auth: Auth, dataset_id: int) -> None:
    data = Path(get_testdata_file("CT_small.dcm")).read_bytes()
    r = upload(app_client, auth("admin"), dataset_id, data, name="scan.png")
    assert r.status_code == 201, r.text
    image = r.json()["image"]
    assert image["format"] == "dicom" and image["modality"] == "CT" and image["has_dicom"]
    dcm = app_client.get(f"/api/cases/{r.json()['id']}/dicom", headers=auth("admin"))
    ds = pydicom.dcmread(io.BytesIO(dcm.content))
    assert ds.PatientIdentityRemoved == "YES"


PHI = {
    "PatientName": "Doe^Jane^Q",
    "PatientID": "MRN-99887766",
    "PatientBirthDate": "19450317",
    "PatientAddress": "42 Wallaby Way Sydney",
    "ReferringPhysicianName": "House^Gregory",
    "PerformingPhysicianName": "Cuddy^Lisa",
    "InstitutionName": "Princeton Plainsboro Teaching",
    "AccessionNumber": "ACC-55443322",
    "StudyDate": "20190704",
}


def phi_dicom() -> tuple[bytes, str]:
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    for keyword, value in PHI.items():
        setattr(ds, keyword, value)
    ds.add_new(0x00991010, "LO", "PRIVATE-SECRET-77")
    buf = io.BytesIO()
    ds.save_as(buf)
    return buf.getvalue(), str(ds.StudyInstanceUID)


def test_phi_never_reaches_storage(
    app_client: TestClient, auth: Auth, dataset_id: int, settings: Settings, db: Database
) -> None:
    data, study_uid = phi_dicom()
    r = upload(app_client, auth("admin"), dataset_id, data, title="chest")
    assert r.status_code == 201, r.text
    needles = [v.encode() for v in PHI.values()] + [b"PRIVATE-SECRET-77", study_uid.encode()]
    needles += [v.replace("^", " ").encode() for v in PHI.values() if "^" in v]
    stored_files = [p for p in settings.data_dir.rglob("*") if p.is_file()]
    assert any(p.name.endswith(".dcm") for p in stored_files)
    for path in stored_files:
        content = path.read_bytes()
        for needle in needles:
            assert needle not in content, f"{needle!r} found in {path}"
    with db.session() as session:
        image = session.scalars(select(StoredImage)).one()
        assert not any(n.decode() in str(image.meta) for n in needles)
    # And via the API responses.
    listing = app_client.get("/api/cases", headers=auth("admin")).text
    for needle in needles:
        assert needle.decode() not in listing


def test_uid_remapping_is_consistent(app_client: TestClient, auth: Auth, dataset_id: int) -> None:
    data, _ = phi_dicom()
    ids = [upload(app_client, auth("admin"), dataset_id, data).json()["id"] for _ in range(2)]
    uids = [
        pydicom.dcmread(
            io.BytesIO(app_client.get(f"/api/cases/{i}/dicom", headers=auth("admin")).content)
        ).StudyInstanceUID
        for i in ids
    ]
    assert uids[0] == uids[1]


@pytest.mark.parametrize(
    ("data", "status", "needle"),
    [
        (b"this is plainly not an image at all", 415, "unsupported"),
        (b"%PDF-1.4\n" + b"x" * 100, 415, "unsupported"),
        (png_bytes(gradient())[:60], 422, ""),
        (Path(get_testdata_file("CT_small.dcm")).read_bytes()[:2000], 422, ""),
        (jpeg_bytes(gradient())[:100], 422, ""),
    ],
    ids=["text", "pdf", "truncated-png", "truncated-dicom", "truncated-jpeg"],
)
def test_bad_uploads_are_clear_4xx(
    app_client: TestClient, auth: Auth, dataset_id: int, data: bytes, status: int, needle: str
) -> None:
    r = upload(app_client, auth("admin"), dataset_id, data, name="scan.png")
    assert r.status_code == status, r.text
    assert needle in r.json()["detail"].lower()
    assert app_client.get("/api/cases", headers=auth("admin")).json()["total"] == 0


def test_upload_size_limit_is_413(settings: Settings, users: Users) -> None:
    from server.app import create_app
    from tests.conftest import token_for

    settings.max_upload_bytes = 1000
    with TestClient(create_app(settings), base_url="http://localhost") as client:
        headers = {"Authorization": f"Bearer {token_for(client, 'admin')}"}
        ds = client.post("/api/datasets", json={"name": "d", "label_set": ["a", "b"]}, headers=headers).json()
        r = upload(
            client,
            headers,
            ds["id"],
            png_bytes(np.random.default_rng(0).integers(0, 255, (100, 100), dtype=np.uint8)),
        )
        assert r.status_code == 413 and "limit" in r.json()["detail"]


def test_decompression_bomb_rejected(settings: Settings, users: Users) -> None:
    from server.app import create_app
    from tests.conftest import token_for

    settings.max_image_pixels = 1000
    with TestClient(create_app(settings), base_url="http://localhost") as client:
        headers = {"Authorization": f"Bearer {token_for(client, 'admin')}"}
        ds = client.post("/api/datasets", json={"name": "d", "label_set": ["a", "b"]}, headers=headers).json()
        r = upload(client, headers, ds["id"], png_bytes(gradient(100, 100)))
        assert r.status_code == 413, r.text


def test_unknown_dataset_and_reference_label(app_client: TestClient, auth: Auth, dataset_id: int) -> None:
    assert upload(app_client, auth("admin"), 9999, png_bytes(gradient())).status_code == 404
    r = upload(app_client, auth("admin"), dataset_id, png_bytes(gradient()), reference_label="tumour")
    assert r.status_code == 422 and "tumour" in r.json()["detail"]


def test_duplicate_external_id_is_409_and_first_case_kept(
    app_client: TestClient, auth: Auth, dataset_id: int
) -> None:
    assert (
        upload(app_client, auth("admin"), dataset_id, png_bytes(gradient()), external_id="X1").status_code
        == 201
    )
    r = upload(app_client, auth("admin"), dataset_id, png_bytes(gradient()), external_id="X1")
    assert r.status_code == 409
    assert app_client.get("/api/cases", headers=auth("admin")).json()["total"] == 1


def test_readers_see_only_their_worklist(
    app_client: TestClient, auth: Auth, dataset_id: int, users: Users
) -> None:
    ids = [
        upload(
            app_client,
            auth("admin"),
            dataset_id,
            png_bytes(gradient()),
            title=f"c{i}",
            reference_label="mass",
        ).json()["id"]
        for i in range(3)
    ]
    r = app_client.post(
        f"/api/cases/{ids[0]}/assignments", json={"reader_ids": [users.reader.id]}, headers=auth("admin")
    )
    assert r.status_code == 201 and r.json()["reader_ids"] == [users.reader.id]
    # Admin-only role check: assigning to an admin is refused.
    bad = app_client.post(
        f"/api/cases/{ids[1]}/assignments", json={"reader_ids": [users.admin.id]}, headers=auth("admin")
    )
    assert bad.status_code == 422
    alice = app_client.get("/api/cases", headers=auth("alice")).json()
    assert [c["id"] for c in alice["items"]] == [ids[0]]
    assert alice["items"][0]["reference_label"] is None  # ground truth hidden from readers
    assert app_client.get(f"/api/cases/{ids[1]}", headers=auth("alice")).status_code == 404
    assert app_client.get(f"/api/cases/{ids[1]}/image", headers=auth("alice")).status_code == 404
    assert app_client.get(f"/api/cases/{ids[0]}/image", headers=auth("alice")).status_code == 200
    assert app_client.get("/api/cases", headers=auth("bob")).json()["total"] == 0
    worklist = app_client.get("/api/worklist", headers=auth("alice")).json()
    assert [w["case"]["id"] for w in worklist] == [ids[0]] and worklist[0]["finished"] is False
    assert (
        app_client.get(f"/api/worklist?reader_id={users.reader2.id}", headers=auth("alice")).status_code
        == 403
    )
    assert (
        app_client.get(f"/api/worklist?reader_id={users.reader.id}", headers=auth("admin")).status_code == 200
    )
    assert (
        app_client.delete(
            f"/api/cases/{ids[0]}/assignments/{users.reader.id}", headers=auth("admin")
        ).status_code
        == 204
    )
    assert app_client.get("/api/cases", headers=auth("alice")).json()["total"] == 0


def test_paging_and_filters(app_client: TestClient, auth: Auth, dataset_id: int) -> None:
    for i in range(7):
        upload(
            app_client,
            auth("admin"),
            dataset_id,
            png_bytes(gradient()),
            title=f"case-{i}",
            reference_label="normal" if i % 2 else "mass",
        )
    page = app_client.get("/api/cases?limit=3&offset=3", headers=auth("admin")).json()
    assert page["total"] == 7 and len(page["items"]) == 3
    assert [c["title"] for c in page["items"]] == ["case-3", "case-4", "case-5"]
    assert app_client.get("/api/cases?reference_label=mass", headers=auth("admin")).json()["total"] == 4
    assert app_client.get("/api/cases?q=case-6", headers=auth("admin")).json()["total"] == 1
    assert app_client.get("/api/cases?limit=0", headers=auth("admin")).status_code == 422


def test_case_views_and_downloads_audited(
    app_client: TestClient, auth: Auth, dataset_id: int, db: Database
) -> None:
    case = upload(app_client, auth("admin"), dataset_id, png_bytes(gradient())).json()
    app_client.get(f"/api/cases/{case['id']}", headers=auth("admin"))
    app_client.get(f"/api/cases/{case['id']}/image", headers=auth("admin"))
    with db.session() as session:
        actions = set(session.scalars(select(AuditLog.action)))
    assert {"case_view", "image_download", "case_upload"} <= actions


def test_delete_case_removes_files(
    app_client: TestClient, auth: Auth, dataset_id: int, settings: Settings
) -> None:
    case = upload(app_client, auth("admin"), dataset_id, png_bytes(gradient())).json()
    assert list((settings.blob_dir / "images").iterdir())
    assert app_client.delete(f"/api/cases/{case['id']}", headers=auth("admin")).status_code == 204
    assert not list((settings.blob_dir / "images").iterdir())
    assert app_client.get(f"/api/cases/{case['id']}", headers=auth("admin")).status_code == 404


def burned_in_dicom() -> bytes:
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.BurnedInAnnotation = "YES"
    buf = io.BytesIO()
    ds.save_as(buf)
    return buf.getvalue()


def test_burned_in_annotation_is_refused_unless_the_dataset_allows_it(
    app_client: TestClient, auth: Auth, dataset_id: int
) -> None:
    admin = auth("admin")
    refused = upload(app_client, admin, dataset_id, burned_in_dicom(), title="burned")
    assert refused.status_code == 422
    assert "BurnedInAnnotation" in refused.json()["detail"]
    assert "allow_burned_in_annotation" in refused.json()["detail"]
    assert app_client.get(f"/api/cases?dataset_id={dataset_id}", headers=admin).json()["total"] == 0
    # An ordinary DICOM in the same dataset is not flagged.
    plain = upload(app_client, admin, dataset_id, phi_dicom()[0])
    assert plain.status_code == 201 and plain.json()["flags"] == []

    patch = {"settings": {"allow_burned_in_annotation": True}}
    r = app_client.patch(f"/api/datasets/{dataset_id}", json=patch, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["settings"]["allow_burned_in_annotation"] is True
    accepted = upload(app_client, admin, dataset_id, burned_in_dicom(), title="burned")
    assert accepted.status_code == 201, accepted.text
    case_id = accepted.json()["id"]
    assert accepted.json()["flags"] == ["burned_in_annotation"]
    assert app_client.get(f"/api/cases/{case_id}", headers=admin).json()["flags"] == ["burned_in_annotation"]
