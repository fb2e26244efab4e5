"""Reader diagnoses back to the PACS as DICOM SR: read back from Orthanc, references and content checked."""

from __future__ import annotations

import io
from typing import Any

import pydicom
from sqlalchemy import select

from server.db import Database
from server.jobs import queue
from server.jobs.kinds import PacsResultsSpec
from server.models import Dataset, DiagnosisLabel, Job, JobState, PacsReport, PacsUidLink
from server.pacs.client import connect
from server.settings import Settings
from server.storage import BlobStore
from server.worker.runner import Worker
from tests.conftest import Users
from tests.server.jobs.models_support import CLASSES, make_diagnosis_version
from tests.server.pacs.data import dicom_file, make_dataset, pacs_settings, upload
from tests.server.pacs.test_import import run_import
from tests.support.orthanc import OrthancServer


def _enable_results(db: Database, dataset_id: int) -> None:
    with db.session() as session:
        dataset = session.get(Dataset, dataset_id)
        assert dataset is not None
        dataset.settings = {**dataset.settings, "pacs_results": {"enabled": True}}


def _diagnose(db: Database, case_id: int, reader_id: int, label: str, confidence: float | None) -> None:
    with db.session() as session:
        session.add(DiagnosisLabel(case_id=case_id, reader_id=reader_id, label=label, confidence=confidence))


def _findings(sr: pydicom.Dataset) -> dict[str, tuple[str, float | None]]:
    """reader -> (label, confidence) from the SR content tree."""
    out = {}
    for item in sr.ContentSequence:
        if item.ValueType != "CODE":
            continue
        reader, confidence = "", None
        for child in item.get("ContentSequence", []):
            if child.ValueType == "PNAME":
                reader = str(child.PersonName).rstrip("^")
            if child.ValueType == "NUM":
                confidence = float(child.MeasuredValueSequence[0].NumericValue)
        out[reader] = (str(item.ConceptCodeSequence[0].CodeMeaning), confidence)
    return out


def test_diagnoses_go_back_as_sr_referencing_the_original(
    orthanc: OrthancServer, settings: Settings, db: Database, users: Users
) -> None:
    ct = upload(orthanc, dicom_file("CT_small.dcm"))
    mr = upload(orthanc, dicom_file("MR_small.dcm"))
    config = pacs_settings(settings, orthanc)
    dataset_id = make_dataset(db)
    assert run_import(config, db, dataset_id).state == JobState.succeeded
    with db.session() as session:
        case_of = {link.original_sop_uid: link.case_id for link in session.scalars(select(PacsUidLink))}

    def results_job() -> tuple[JobState, dict[str, Any] | None, str | None]:
        job = queue.submit(db, PacsResultsSpec(), dataset_id=dataset_id)
        assert Worker(config, db=db).run_job(job.id)
        with db.session() as session:
            final = session.get(Job, job.id)
            assert final is not None
            return final.state, final.result, final.error

    # Off by default: the job fails naming the setting.
    state, _, error = results_job()
    assert state == JobState.failed and error is not None and "pacs_results.enabled" in error
    before = orthanc.instance_count()

    _enable_results(db, dataset_id)
    _diagnose(db, case_of[ct.sop_uid], users.reader.id, "abnormal", 0.75)
    _diagnose(db, case_of[ct.sop_uid], users.reader2.id, "normal", None)
    _diagnose(db, case_of[mr.sop_uid], users.reader.id, "normal", 0.5)
    state, result, error = results_job()
    assert state == JobState.succeeded, error
    assert result is not None and (result["sent"], result["cases"]) == (2, 2)
    assert orthanc.instance_count() == before + 2

    client = connect(orthanc.dicomweb_url, config)
    with db.session() as session:
        reports = {r.case_id: r for r in session.scalars(select(PacsReport))}
    expected = {
        ct.sop_uid: {"alice": ("abnormal", 0.75), "bob": ("normal", None)},
        mr.sop_uid: {"alice": ("normal", 0.5)},
    }
    for original in (ct, mr):
        report = reports[case_of[original.sop_uid]]
        sr = client.retrieve_instance(original.study_uid, report.sr_series_uid, report.sr_sop_uid)
        # Filed in the ORIGINAL study, for the original patient, referencing the original image.
        assert sr.Modality == "SR" and sr.StudyInstanceUID == original.study_uid
        assert str(sr.PatientName) == original.patient_name
        source = pydicom.dcmread(io.BytesIO(dicom_file("CT_small.dcm" if original is ct else "MR_small.dcm")))
        assert sr.PatientID == source.PatientID
        images = [i for i in sr.ContentSequence if i.ValueType == "IMAGE"]
        assert images[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID == original.sop_uid
        evidence = sr.CurrentRequestedProcedureEvidenceSequence[0]
        assert evidence.StudyInstanceUID == original.study_uid
        assert evidence.ReferencedSeriesSequence[0].SeriesInstanceUID == original.series_uid
        assert _findings(sr) == expected[original.sop_uid]

    # Unchanged diagnoses are not sent again; a changed one is.
    state, result, _ = results_job()
    assert (
        state == JobState.succeeded
        and result is not None
        and (result["sent"], result["already_sent"]) == (0, 2)
    )
    _diagnose(db, case_of[mr.sop_uid], users.reader.id, "abnormal", 0.9)
    state, result, _ = results_job()
    assert result is not None and result["sent"] == 1
    assert orthanc.instance_count() == before + 3


def test_predictions_of_the_active_model_join_the_report(
    orthanc: OrthancServer, settings: Settings, db: Database, users: Users
) -> None:
    ct = upload(orthanc, dicom_file("CT_small.dcm"))
    config = pacs_settings(settings, orthanc)
    dataset_id = make_dataset(db)
    assert run_import(config, db, dataset_id).state == JobState.succeeded
    with db.session() as session:
        dataset = session.get(Dataset, dataset_id)
        assert dataset is not None
        dataset.settings = {"pacs_results": {"enabled": True, "include_predictions": True}}

    def results_job() -> Job:
        job = queue.submit(db, PacsResultsSpec(), dataset_id=dataset_id)
        assert Worker(config, db=db).run_job(job.id)
        with db.session() as session:
            final = session.get(Job, job.id)
            assert final is not None
            session.expunge(final)
            return final

    no_model = results_job()
    assert no_model.state == JobState.failed and "predictions enabled but unavailable" in (
        no_model.error or ""
    )

    model_id = make_diagnosis_version(db, BlobStore(config.blob_dir), dataset_id, active=True)
    sent = results_job()  # no reader diagnosis yet: the prediction alone makes a report
    assert sent.state == JobState.succeeded, sent.error
    assert sent.result is not None and sent.result["sent"] == 1
    with db.session() as session:
        report = session.scalars(select(PacsReport)).one()
    sr = connect(orthanc.dicomweb_url, config).retrieve_instance(
        ct.study_uid, report.sr_series_uid, report.sr_sop_uid
    )
    (finding,) = [i for i in sr.ContentSequence if i.ValueType == "CODE"]
    assert str(finding.ConceptCodeSequence[0].CodeMeaning) in CLASSES
    algorithm = [c for c in finding.ContentSequence if c.ValueType == "TEXT"][0]
    assert algorithm.TextValue == f"McGIP model {model_id} v1"
    probability = float(
        [c for c in finding.ContentSequence if c.ValueType == "NUM"][0].MeasuredValueSequence[0].NumericValue
    )
    assert 0.5 <= probability <= 1.0  # the predicted label is the most probable of two
