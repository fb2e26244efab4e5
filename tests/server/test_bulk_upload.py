"""Bulk upload (``POST /api/cases/bulk``): folders and zips of images, one result per file."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from server.app import create_app
from server.db import Database
from server.models import AuditLog, Case, StoredImage
from server.settings import Settings
from tests.conftest import PASSWORD, Users, token_for
from tests.server.test_auth import _csrf_from
from tests.server.test_cases import burned_in_dicom, gradient, phi_dicom, png_bytes

Auth = Callable[[str], dict[str, str]]


@pytest.fixture
def dataset_id(app_client: TestClient, auth: Auth) -> int:
    r = app_client.post(
        "/api/datasets", json={"name": "bulk", "label_set": ["a", "b"]}, headers=auth("admin")
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def make_zip(entries: dict[str, bytes], *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as archive:
        for name, data in entries.items():
            archive.writestr(zipfile.ZipInfo(name), data, compress_type=compression)
    return buf.getvalue()


def bulk(client: TestClient, headers: dict[str, str], dataset: int, files: list[tuple[str, bytes]]):
    return client.post(
        "/api/cases/bulk",
        files=[("files", (name, data, "application/octet-stream")) for name, data in files],
        data={"dataset_id": str(dataset)},
        headers=headers,
    )


def test_zip_with_images_duplicates_non_images_and_unsafe_paths(
    app_client: TestClient,
    auth: Auth,
    dataset_id: int,
    db: Database,
    settings: Settings,
) -> None:
    dicom, study_uid = phi_dicom()
    archive = make_zip(
        {
            "study/ct.dcm": dicom,
            "study/copy-of-ct.dcm": dicom,  # same pixels: a duplicate of the first
            "study/gradient.png": png_bytes(gradient()),
            "notes.txt": b"not an image at all\n",
            "../../evil.png": png_bytes(gradient(32, 32)),
            "study/burned.dcm": burned_in_dicom(),
            "__MACOSX/study/._ct.dcm": b"resource fork",
        }
    )
    r = bulk(app_client, auth("admin"), dataset_id, [("scans.zip", archive)])
    assert r.status_code == 200, r.text
    out = r.json()
    by_name = {f["name"]: f for f in out["files"]}
    assert list(by_name) == [
        "scans.zip/study/ct.dcm",
        "scans.zip/study/copy-of-ct.dcm",
        "scans.zip/study/gradient.png",
        "scans.zip/notes.txt",
        "scans.zip/../../evil.png",
        "scans.zip/study/burned.dcm",
    ]
    assert (out["stored"], out["duplicates"], out["refused"]) == (2, 1, 3)
    ct = by_name["scans.zip/study/ct.dcm"]
    assert ct["outcome"] == "stored" and ct["case_id"]
    dup = by_name["scans.zip/study/copy-of-ct.dcm"]
    assert dup["outcome"] == "duplicate" and dup["duplicate_of"] == ct["case_id"] and dup["case_id"] is None
    assert by_name["scans.zip/notes.txt"]["outcome"] == "refused"
    assert "unsupported" in by_name["scans.zip/notes.txt"]["reason"].lower()
    evil = by_name["scans.zip/../../evil.png"]
    assert evil["outcome"] == "refused" and "unsafe path" in evil["reason"]
    assert "BurnedInAnnotation" in by_name["scans.zip/study/burned.dcm"]["reason"]

    # Stored files are committed cases (de-identified like a single upload), with an audit event each.
    with db.session() as session:
        cases = session.scalars(select(Case).where(Case.dataset_id == dataset_id).order_by(Case.id)).all()
        assert [c.title for c in cases] == ["scans.zip/study/ct.dcm", "scans.zip/study/gradient.png"]
        stored = session.scalar(select(StoredImage).where(StoredImage.case_id == ct["case_id"]))
        assert stored is not None and stored.has_dicom
        uploads = session.scalars(select(AuditLog.target_id).where(AuditLog.action == "case_upload")).all()
        assert sorted(uploads) == sorted(str(c.id) for c in cases)
    stored_dicom = app_client.get(f"/api/cases/{ct['case_id']}/dicom", headers=auth("admin")).content
    assert study_uid.encode() not in stored_dicom
    # Nothing was written outside the data directory by the traversal entry.
    assert not (settings.data_dir.parent / "evil.png").exists()

    # The same zip again: everything that was stored is now a duplicate.
    again = bulk(app_client, auth("admin"), dataset_id, [("scans.zip", archive)]).json()
    assert (again["stored"], again["duplicates"]) == (0, 3)


def test_folder_upload_keeps_relative_paths(
    app_client: TestClient,
    auth: Auth,
    dataset_id: int,
) -> None:
    files = [
        ("scans/a/one.png", png_bytes(gradient(40, 50))),
        ("scans/b/two.png", png_bytes(gradient(50, 40))),
        ("scans/empty.png", b""),
    ]
    r = bulk(app_client, auth("admin"), dataset_id, files)
    assert r.status_code == 200, r.text
    assert [(f["name"], f["outcome"]) for f in r.json()["files"]] == [
        ("scans/a/one.png", "stored"),
        ("scans/b/two.png", "stored"),
        ("scans/empty.png", "refused"),
    ]
    # Readers may not bulk upload; a missing dataset is a 404 naming it; bad ids a 422.
    assert bulk(app_client, auth("alice"), dataset_id, files[:1]).status_code == 403
    missing = bulk(app_client, auth("admin"), 9999, files[:1])
    assert missing.status_code == 404 and "9999" in missing.json()["detail"]
    assert bulk(app_client, auth("admin"), 2**40, files[:1]).status_code == 422
    broken = bulk(app_client, auth("admin"), dataset_id, [("x.zip", b"PK\x03\x04 truncated")])
    assert broken.status_code == 422 and "zip" in broken.json()["detail"]


@pytest.fixture
def small_limits(settings: Settings, users: Users) -> Iterator[TestClient]:
    limited = settings.model_copy(update={"bulk_max_files": 3, "bulk_max_total_bytes": 200_000})
    with TestClient(create_app(limited), base_url="http://localhost") as client:
        yield client


def test_limits_on_files_and_uncompressed_bytes_are_413s_naming_them(
    small_limits: TestClient,
    dataset_id: int,
) -> None:
    headers = {"Authorization": f"Bearer {token_for(small_limits, 'admin', scope='read write')}"}
    # A zip bomb in miniature: 1 MB of zeros compresses to about 1 kB.
    bomb = make_zip({"zeros.png": bytes(1_000_000)})
    assert len(bomb) < 10_000
    r = bulk(small_limits, headers, dataset_id, [("bomb.zip", bomb)])
    assert r.status_code == 413 and "200000 bytes per upload" in r.json()["detail"], r.text
    many = make_zip({f"{i}.png": png_bytes(gradient(8, 8)) for i in range(4)})
    r = bulk(small_limits, headers, dataset_id, [("many.zip", many)])
    assert r.status_code == 413 and "limit is 3 files per upload" in r.json()["detail"]
    # Nothing of a refused upload is stored.
    assert small_limits.get(f"/api/cases?dataset_id={dataset_id}", headers=headers).json()["total"] == 0


def test_cookie_sessions_need_the_csrf_header(app_client: TestClient, users: Users, dataset_id: int) -> None:
    csrf = _csrf_from(app_client.get("/login").text)
    login = {"username": "admin", "password": PASSWORD, "csrf_token": csrf}
    assert app_client.post("/login", data=login, follow_redirects=False).status_code == 303
    files = [("one.png", png_bytes(gradient()))]
    assert bulk(app_client, {}, dataset_id, files).status_code == 403
    session_csrf = app_client.get("/api/auth/me").json()["csrf_token"]
    ok = bulk(app_client, {"X-CSRF-Token": session_csrf}, dataset_id, files)
    assert ok.status_code == 200 and ok.json()["stored"] == 1
