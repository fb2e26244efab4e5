"""PACS import over DICOMweb against a real Orthanc: de-identification, links, dedupe, filters, failures."""

from __future__ import annotations

import io
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydicom
import pytest
from sqlalchemy import func, select

from server.cases.service import DICOM_FILE
from server.db import Database
from server.jobs import queue
from server.jobs.kinds import PacsImportSpec
from server.models import Case, Job, JobState, PacsImport, PacsUidLink, StoredImage
from server.pacs import importer
from server.pacs.query import InstanceRef
from server.settings import Settings
from server.worker.runner import Worker
from tests.server.pacs.data import ct_series, dicom_file, make_dataset, pacs_settings, upload
from tests.support.orthanc import OrthancServer

ROOT = Path(__file__).resolve().parents[3]


def run_import(settings: Settings, db: Database, dataset_id: int, **params: object) -> Job:
    job = queue.submit(db, PacsImportSpec.model_validate(params), dataset_id=dataset_id)
    assert Worker(settings, db=db).run_job(job.id)
    with db.session() as session:
        final = session.get(Job, job.id)
        assert final is not None
        session.expunge(final)
    return final


def count(db: Database, model: type) -> int:
    with db.session() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_import_deidentifies_links_and_skips_unsupported(
    orthanc: OrthancServer, settings: Settings, db: Database
) -> None:
    ct = upload(orthanc, dicom_file("CT_small.dcm"))
    mr = upload(orthanc, dicom_file("MR_small.dcm"))
    sr = upload(orthanc, dicom_file("test-SR.dcm"))
    plan = upload(orthanc, dicom_file("rtplan.dcm"))
    config = pacs_settings(settings, orthanc)
    dataset_id = make_dataset(db)

    job = run_import(config, db, dataset_id)

    assert job.state == JobState.succeeded, job.error
    result = job.result or {}
    assert result["instances"] == 4 and result["imported"] == 2 and result["skipped_count"] == 2
    reasons = {s["sop_instance_uid"]: s["reason"] for s in result["skipped"]}
    assert set(reasons) == {sr.sop_uid, plan.sop_uid}
    assert all(reason for reason in reasons.values())
    assert job.progress == 1.0 and job.progress_info["imported"] == 2

    with db.session() as session:
        links = {link.original_sop_uid: link for link in session.scalars(select(PacsUidLink))}
        assert set(links) == {ct.sop_uid, mr.sop_uid}
        for original in (ct, mr):
            link = links[original.sop_uid]
            assert (link.original_study_uid, link.original_series_uid) == (
                original.study_uid,
                original.series_uid,
            )
            assert link.source_url == orthanc.dicomweb_url
            case = session.get(Case, link.case_id)
            assert case is not None and case.dataset_id == dataset_id and case.image is not None
            stored = pydicom.dcmread(Path(config.blob_dir) / case.image.storage_dir / DICOM_FILE)
            # The stored file is the de-identified one, and the link names its UIDs.
            assert str(stored.get("PatientName", "")) != original.patient_name
            assert stored.PatientIdentityRemoved == "YES"
            assert stored.SOPInstanceUID == link.deid_sop_uid != original.sop_uid
            assert stored.StudyInstanceUID == link.deid_study_uid != original.study_uid
            assert stored.SeriesInstanceUID == link.deid_series_uid != original.series_uid
        keys = list(session.scalars(select(PacsImport.sop_key)))
        # The dedupe key is a salted hash, not the UID.
        assert len(keys) == 2 and not {ct.sop_uid, mr.sop_uid} & set(keys)


def test_reimport_imports_nothing_twice(orthanc: OrthancServer, settings: Settings, db: Database) -> None:
    for data in ct_series(3):
        orthanc.upload(data)
    config = pacs_settings(settings, orthanc)
    dataset_id = make_dataset(db)
    first = run_import(config, db, dataset_id)
    assert first.result is not None and first.result["imported"] == 3
    for data in ct_series(2):  # a new study arrives in the PACS
        orthanc.upload(data)
    second = run_import(config, db, dataset_id)
    assert second.result is not None
    assert (second.result["imported"], second.result["already_imported"]) == (2, 3)
    third = run_import(config, db, dataset_id)
    assert third.result is not None and third.result["imported"] == 0
    assert count(db, Case) == count(db, PacsUidLink) == count(db, StoredImage) == 5
    # Another dataset is another import: the same instances may go there too.
    other = run_import(config, db, make_dataset(db, "other"))
    assert other.result is not None and other.result["imported"] == 5


def test_query_filters(orthanc: OrthancServer, settings: Settings, db: Database) -> None:
    chest = ct_series(2, study_date="20200105", description="CT chest")
    head = ct_series(1, study_date="20210610", description="CT head")
    for data in chest + head:
        orthanc.upload(data)
    mr = upload(orthanc, dicom_file("MR_small.dcm"))
    chest_study = pydicom.dcmread(__import__("io").BytesIO(chest[0])).StudyInstanceUID
    config = pacs_settings(settings, orthanc)

    def imported(**params: object) -> int:
        job = run_import(config, db, make_dataset(db, f"d{count(db, Job)}"), **params)
        assert job.state == JobState.succeeded, job.error
        assert job.result is not None
        return int(job.result["imported"])

    assert imported(modality="MR") == 1
    assert imported(modality="CT") == 3
    assert imported(date_from="2020-01-01", date_to="2020-12-31") == 2
    assert imported(date_from="2021-01-01", modality="CT") == 1
    assert imported(study_description="*head*") == 1
    assert imported(study_uids=[chest_study]) == 2
    job = run_import(config, db, make_dataset(db, "missing"), study_uids=["1.2.3.4", mr.study_uid])
    assert job.result is not None and job.result["missing_studies"] == ["1.2.3.4"]
    assert job.result["imported"] == 1


def test_unreachable_pacs_fails_with_a_clear_message(
    orthanc: OrthancServer, settings: Settings, db: Database
) -> None:
    config = pacs_settings(settings, orthanc, pacs_url="http://127.0.0.1:9/dicom-web")
    job = run_import(config, db, make_dataset(db))
    assert job.state == JobState.failed
    assert job.error is not None and "PACS at http://127.0.0.1:9/dicom-web is unreachable" in job.error
    assert count(db, Case) == 0


def test_refused_credentials_fail_without_leaking_them(
    orthanc: OrthancServer, settings: Settings, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    orthanc.upload(dicom_file("CT_small.dcm"))
    secret = "wrong-password-that-must-not-leak"
    config = pacs_settings(settings, orthanc, pacs_password=secret)
    with caplog.at_level(logging.DEBUG):
        job = run_import(config, db, make_dataset(db))
    assert job.state == JobState.failed
    assert job.error is not None and "refused the credentials (HTTP 401)" in job.error
    assert secret not in caplog.text and secret not in job.error
    assert secret not in repr(config) and secret not in str(config.model_dump())
    assert count(db, Case) == 0


def test_credentials_go_only_to_the_configured_pacs(
    orthanc: OrthancServer, settings: Settings, db: Database
) -> None:
    orthanc.upload(dicom_file("CT_small.dcm"))
    config = pacs_settings(settings, orthanc, pacs_url="http://pacs.invalid/dicom-web")
    job = run_import(config, db, make_dataset(db), url=orthanc.dicomweb_url)
    # Orthanc wants auth; the job URL is not under MCGIP_PACS_URL, so none was sent.
    assert job.state == JobState.failed and "HTTP 401" in (job.error or "")


@pytest.mark.slow
def test_killed_import_resumes_where_it_stopped(
    orthanc: OrthancServer, settings: Settings, db: Database
) -> None:
    for data in ct_series(6):
        orthanc.upload(data)
    config = pacs_settings(settings, orthanc)
    dataset_id = make_dataset(db)
    job = queue.submit(db, PacsImportSpec(), dataset_id=dataset_id)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "KILL_AT": "4",
        "MCGIP_DATABASE_URL": config.resolved_database_url,
        "MCGIP_DATA_DIR": str(config.data_dir),
        "MCGIP_SECRET_KEY": config.secret_key,
        "MCGIP_PACS_URL": orthanc.dicomweb_url,
        "MCGIP_PACS_USERNAME": orthanc.username,
        "MCGIP_PACS_PASSWORD": orthanc.password,
    }
    killed = subprocess.run(
        [sys.executable, "-m", "tests.server.pacs.kill_during_import", str(job.id)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    # The batches before the fourth instance's were committed (two or three instances, batches of
    # at most two); the fourth died before its commit and left no row. Progress (written by the
    # heartbeat, so it may lag) never counts an instance that was not committed.
    committed = count(db, PacsImport)
    assert 2 <= committed <= 3 and count(db, Case) == committed
    with db.session() as session:
        killed_job = session.get(Job, job.id)
        assert killed_job is not None and killed_job.progress_info.get("imported", 0) <= committed

    assert queue.requeue_stale(db, timeout_s=0) == [job.id]
    assert Worker(config, db=db).run_job(job.id)
    with db.session() as session:
        final = session.get(Job, job.id)
        assert final is not None and final.state == JobState.succeeded, final.error
        assert final.result is not None
        assert (final.result["imported"], final.result["already_imported"]) == (6 - committed, committed)
        links = list(session.scalars(select(PacsUidLink.original_sop_uid)))
    assert count(db, Case) == count(db, PacsImport) == 6 and len(set(links)) == 6
    # Every case has its files; at most the killed batch's folders (two here) are left without a case.
    image_dirs = {p.name for p in (Path(config.blob_dir) / "images").iterdir()}
    with db.session() as session:
        stored = {Path(d).name for d in session.scalars(select(StoredImage.storage_dir))}
    assert stored <= image_dirs and len(image_dirs - stored) <= 2


def test_a_series_comes_in_one_request_and_its_bad_object_gets_its_own_reason(
    orthanc: OrthancServer, settings: Settings, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A series is retrieved with one WADO-RS request; an object in it that cannot be ingested is
    retrieved again on its own, which skips it with its reason; every instance is stored once."""
    series = ct_series(4)
    first = pydicom.dcmread(io.BytesIO(series[0]), stop_before_pixels=True)
    plan = pydicom.dcmread(io.BytesIO(dicom_file("rtplan.dcm")))  # no pixel data: not an image
    plan.StudyInstanceUID, plan.SeriesInstanceUID = first.StudyInstanceUID, first.SeriesInstanceUID
    plan.PatientID, plan.PatientName = first.PatientID, first.PatientName  # the same study in Orthanc
    buf = io.BytesIO()
    plan.save_as(buf, enforce_file_format=True)
    for data in [*series, buf.getvalue()]:
        orthanc.upload(data)
    calls: dict[str, int] = {"series": 0, "instance": 0}
    real_series, real_instance = importer.iter_series_parts, importer.retrieve_instance_bytes

    def count_series(*args: Any) -> Iterator[bytes]:
        calls["series"] += 1
        return real_series(*args)

    def count_instance(*args: Any) -> bytes:
        calls["instance"] += 1
        return real_instance(*args)

    monkeypatch.setattr(importer, "iter_series_parts", count_series)
    monkeypatch.setattr(importer, "retrieve_instance_bytes", count_instance)

    job = run_import(pacs_settings(settings, orthanc), db, make_dataset(db))

    assert job.state == JobState.succeeded, job.error
    result = job.result or {}
    assert (result["imported"], result["skipped_count"]) == (4, 1)
    assert result["skipped"][0]["sop_instance_uid"] == plan.SOPInstanceUID
    assert "no pixel data" in result["skipped"][0]["reason"]
    assert calls == {"series": 1, "instance": 1}
    with db.session() as session:
        originals = set(session.scalars(select(PacsUidLink.original_sop_uid)))
    expected = {str(pydicom.dcmread(io.BytesIO(d), stop_before_pixels=True).SOPInstanceUID) for d in series}
    assert originals == expected and count(db, Case) == count(db, PacsImport) == 4


def test_a_mostly_imported_series_is_retrieved_instance_by_instance() -> None:
    def ref(series: str, n: int) -> InstanceRef:
        return InstanceRef("1.2", series, f"1.2.{series}.{n}", "", "CT", "", "")

    refs = [ref("3", n) for n in range(4)] + [ref("4", n) for n in range(3)] + [ref("5", 0)]
    pending = [(r, f"k{i}") for i, r in enumerate(refs) if r.series_uid != "3" or r.sop_uid.endswith(".0")]
    plan = importer._plan(refs, pending)
    # Series 3: one of four left (instance by instance); series 4: all three (one request);
    # series 5: a single instance (one request would gain nothing).
    assert [(series, len(items), whole) for _study, series, items, whole in plan] == [
        ("3", 1, False),
        ("4", 3, True),
        ("5", 1, False),
    ]
