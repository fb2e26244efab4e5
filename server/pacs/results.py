"""Send reader diagnoses (and, when enabled, the active model's predictions, scored by the predict
service) of PACS-imported cases back to their PACS as DICOM SR (STOW-RS).

For each case of the dataset that has a UID link and at least one diagnosis: fetch the original
instance's metadata (WADO-RS, in memory), build the SR (:mod:`server.pacs.report`), store it with
STOW-RS, then record it in ``pacs_reports``. A report whose content was sent before is not sent again;
a changed diagnosis yields a new report.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests
from dicomweb_client.api import DICOMwebClient
from sqlalchemy import select

from server.datasets.settings import DatasetSettings
from server.db import Database
from server.exceptions import DomainError
from server.models import Case, Dataset, DiagnosisLabel, PacsReport, PacsUidLink, StoredImage, User
from server.pacs.client import PacsError, describe
from server.pacs.report import (
    Diagnosis,
    OriginalImage,
    Prediction,
    build_report,
    content_digest,
    evidence_from_metadata,
)
from server.registry import predict
from server.storage import BlobStore

logger = logging.getLogger(__name__)


class ResultsDisabled(Exception):
    """The dataset's settings do not allow sending results to the PACS."""


class PredictionsUnavailable(Exception):
    """Predictions are enabled but the dataset has no active model that can predict."""


@dataclass
class ResultsReport:
    """What a results job did; becomes the job result."""

    cases: int = 0
    sent: int = 0
    already_sent: int = 0
    without_diagnosis: int = 0
    reports: list[dict[str, Any]] = field(default_factory=list)

    def as_result(self) -> dict[str, Any]:
        return {
            "cases": self.cases,
            "sent": self.sent,
            "already_sent": self.already_sent,
            "without_diagnosis": self.without_diagnosis,
            "reports": self.reports[:1000],
        }


@dataclass(frozen=True)
class _Pending:
    case_id: int
    url: str
    image: OriginalImage
    diagnoses: list[Diagnosis]
    prediction: Prediction | None
    digest: str


def _predictions(
    db: Database, blobs: BlobStore, dataset_id: int, case_ids: list[int], max_pixels: int
) -> dict[int, Prediction]:
    """The dataset's active model's prediction for each case (the predict service's own scoring)."""
    if not case_ids:
        return {}
    with db.session() as session:
        try:
            model = predict.ready_model(blobs, predict.resolve_version(session, "active", dataset_id))
        except DomainError as exc:
            raise PredictionsUnavailable(f"predictions enabled but unavailable: {exc.detail}") from None
        images = {
            img.case_id: img
            for img in session.scalars(select(StoredImage).where(StoredImage.case_id.in_(case_ids)))
        }
        name = f"McGIP model {model.version.id} v{model.version.version}"
    items = [predict.stored_input(blobs, cid, images[cid]) for cid in case_ids if cid in images]
    out = {}
    for entry in predict.run_predictions(model, items, max_pixels):
        label = str(entry["label"])
        out[int(entry["case_id"])] = Prediction(
            model=name, label=label, probability=float(entry["probabilities"][label])
        )
    return out


def _latest_diagnoses(db: Database, case_ids: list[int]) -> dict[int, list[Diagnosis]]:
    """Each reader's newest diagnosis per case, readers in name order."""
    latest: dict[tuple[int, str], Diagnosis] = {}
    with db.session() as session:
        rows = session.execute(
            select(DiagnosisLabel.case_id, User.username, DiagnosisLabel.label, DiagnosisLabel.confidence)
            .join(User, User.id == DiagnosisLabel.reader_id)
            .where(DiagnosisLabel.case_id.in_(case_ids))
            .order_by(DiagnosisLabel.created_at, DiagnosisLabel.id)
        )
        for case_id, reader, label, confidence in rows:
            latest[(case_id, reader)] = Diagnosis(reader=reader, label=label, confidence=confidence)
    out: dict[int, list[Diagnosis]] = defaultdict(list)
    for (case_id, _), diagnosis in sorted(latest.items()):
        out[case_id].append(diagnosis)
    return out


def _pending(
    db: Database, blobs: BlobStore, dataset_id: int, report: ResultsReport, max_pixels: int
) -> list[_Pending]:
    with db.session() as session:
        dataset = session.get(Dataset, dataset_id)
        if dataset is None:
            raise PacsError(f"dataset {dataset_id} not found")
        options = DatasetSettings.stored(dataset.settings, dataset_id=dataset_id).pacs_results
        if not options.enabled:
            raise ResultsDisabled(
                f"dataset {dataset.name!r} does not send results to the PACS (settings.pacs_results.enabled)"
            )
        links = list(
            session.scalars(
                select(PacsUidLink)
                .join(Case, Case.id == PacsUidLink.case_id)
                .where(Case.dataset_id == dataset_id)
                .order_by(PacsUidLink.case_id)
            )
        )
        sent = {(int(c), str(d)) for c, d in session.execute(select(PacsReport.case_id, PacsReport.digest))}
        session.expunge_all()
    report.cases = len(links)
    case_ids = [link.case_id for link in links]
    diagnoses = _latest_diagnoses(db, case_ids)
    predictions = (
        _predictions(db, blobs, dataset_id, case_ids, max_pixels) if options.include_predictions else {}
    )
    pending = []
    for link in links:
        found = diagnoses.get(link.case_id, [])
        prediction = predictions.get(link.case_id)
        if not found and prediction is None:
            report.without_diagnosis += 1
            continue
        image = OriginalImage(
            link.original_study_uid, link.original_series_uid, link.original_sop_uid, link.sop_class_uid
        )
        digest = content_digest(image, found, prediction)
        if (link.case_id, digest) in sent:
            report.already_sent += 1
            continue
        pending.append(_Pending(link.case_id, link.source_url, image, found, prediction, digest))
    return pending


def _send_one(client: DICOMwebClient, item: _Pending) -> tuple[str, str]:
    """Build and STOW one SR; returns its (series UID, SOP instance UID)."""
    image = item.image
    try:
        metadata = client.retrieve_instance_metadata(image.study_uid, image.series_uid, image.sop_uid)
    except requests.RequestException as exc:
        raise PacsError(describe(exc, client.base_url)) from None
    sr = build_report(
        evidence=evidence_from_metadata(metadata),
        image=image,
        diagnoses=item.diagnoses,
        prediction=item.prediction,
    )
    try:
        answer = client.store_instances([sr], study_instance_uid=image.study_uid)
    except requests.RequestException as exc:
        raise PacsError(describe(exc, client.base_url)) from None
    failed = answer.get("FailedSOPSequence") or []
    if failed:
        reason = failed[0].get("FailureReason", "unknown")
        raise PacsError(f"PACS at {client.base_url} rejected the report (failure reason {reason})")
    return str(sr.SeriesInstanceUID), str(sr.SOPInstanceUID)


def send_results(
    db: Database,
    blobs: BlobStore,
    *,
    dataset_id: int,
    job_id: int | None,
    connect: Callable[[str], DICOMwebClient],
    check: Callable[[], None] = lambda: None,
    progress: Callable[[float, dict[str, Any]], None] = lambda _p, _i: None,
    max_pixels: int = 64_000_000,
) -> ResultsReport:
    """Send what is new; raises ResultsDisabled, or PacsError when the PACS fails (sent ones are recorded)."""
    report = ResultsReport()
    pending = _pending(db, blobs, dataset_id, report, max_pixels)
    clients: dict[str, DICOMwebClient] = {}
    for done, item in enumerate(pending, start=1):
        check()
        client = clients.get(item.url) or clients.setdefault(item.url, connect(item.url))
        series_uid, sop_uid = _send_one(client, item)
        with db.session() as session:
            session.add(
                PacsReport(
                    case_id=item.case_id,
                    digest=item.digest,
                    sr_series_uid=series_uid,
                    sr_sop_uid=sop_uid,
                    destination_url=item.url,
                    job_id=job_id,
                )
            )
        report.sent += 1
        report.reports.append({"case_id": item.case_id, "sr_sop_instance_uid": sop_uid})
        progress(done / len(pending), {"phase": "send", "sent": report.sent, "pending": len(pending)})
    logger.info(
        "PACS results of dataset %s: %d sent, %d unchanged, %d cases without diagnosis",
        dataset_id,
        report.sent,
        report.already_sent,
        report.without_diagnosis,
    )
    return report
