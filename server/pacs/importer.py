"""Import instances from a PACS into a dataset: QIDO-RS listing, WADO-RS retrieval, de-identified ingest.

Each retrieved instance stays in memory until :func:`server.cases.service.create_case` (the upload
path) has de-identified it; only de-identified files reach the disk. Every instance is stored in its
own transaction together with its dedupe row (``pacs_imports``) and its UID link (``pacs_uid_links``),
so a killed or failed import leaves whole instances only, and the next run skips them.

Retrieval runs a few requests ahead of ingest in a small thread pool, so network and de-identification
overlap; the prefetch window bounds memory.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pydicom
import requests
from dicomweb_client.api import DICOMwebClient
from pydicom.dataset import Dataset as DicomDataset
from sqlalchemy import select

from server.cases.service import DICOM_FILE, create_case
from server.db import Database
from server.exceptions import DomainError
from server.models import Dataset, PacsImport, PacsUidLink
from server.pacs.client import PacsError, describe, status_of
from server.pacs.query import ImportQuery, InstanceRef, find_studies, iter_instances
from server.settings import Settings
from server.storage import BlobStore

logger = logging.getLogger(__name__)

#: Retrievals in flight ahead of the instance being stored.
PREFETCH = 4
#: Skipped instances listed one by one in the job result (the count is always complete).
MAX_REPORTED_SKIPS = 500
#: Statuses that mean "this one instance is not available", not "the PACS is failing".
_INSTANCE_GONE = frozenset({404, 410})


def sop_key(sop_uid: str, salt: bytes) -> str:
    """The dedupe key of an instance: HMAC-SHA256 of its SOPInstanceUID under the de-id key (hex)."""
    return hmac.new(salt, b"pacs-sop:" + sop_uid.encode("ascii", "replace"), hashlib.sha256).hexdigest()


@dataclass
class ImportReport:
    """What an import did; becomes the job result."""

    url: str
    studies: int = 0
    instances: int = 0
    imported: int = 0
    already_imported: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)
    skipped_count: int = 0
    missing_studies: list[str] = field(default_factory=list)
    case_ids: list[int] = field(default_factory=list)

    def skip(self, ref: InstanceRef, reason: str) -> None:
        self.skipped_count += 1
        if len(self.skipped) < MAX_REPORTED_SKIPS:
            self.skipped.append(
                {
                    "sop_instance_uid": ref.sop_uid,
                    "series_instance_uid": ref.series_uid,
                    "modality": ref.modality,
                    "sop_class_uid": ref.sop_class_uid,
                    "reason": reason,
                }
            )

    def as_result(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "studies": self.studies,
            "instances": self.instances,
            "imported": self.imported,
            "already_imported": self.already_imported,
            "skipped_count": self.skipped_count,
            "skipped": self.skipped,
            "missing_studies": self.missing_studies,
            "case_ids": self.case_ids[:1000],
        }


class _Skip(Exception):
    """This instance cannot be imported; the message is the per-instance reason."""


def _retrieve(client: DICOMwebClient, ref: InstanceRef) -> DicomDataset:
    """WADO-RS retrieve one instance in its stored transfer syntax.

    Raises:
        _Skip: the instance is gone or its content is not DICOM.
        PacsError: the PACS failed (unreachable, refused, server error): the import must stop.
    """
    try:
        return client.retrieve_instance(
            ref.study_uid, ref.series_uid, ref.sop_uid, media_types=(("application/dicom", "*"),)
        )
    except requests.RequestException as exc:
        if status_of(exc) in _INSTANCE_GONE:
            raise _Skip(f"the PACS no longer has it (HTTP {status_of(exc)})") from None
        raise PacsError(describe(exc, client.base_url)) from None
    except pydicom.errors.InvalidDicomError:
        raise _Skip("the PACS answered content that is not DICOM") from None
    except (ValueError, EOFError, KeyError, IndexError, TypeError) as exc:
        raise _Skip(f"the PACS answered an unreadable object ({type(exc).__name__})") from None


def _encode(ds: DicomDataset) -> bytes:
    """The retrieved data set as a DICOM file, in memory (ingest reads files)."""
    buf = io.BytesIO()
    pydicom.dcmwrite(buf, ds, enforce_file_format=True)
    return buf.getvalue()


def _deidentified_uids(blobs: BlobStore, storage_dir: str) -> tuple[str, str, str]:
    """Study, series and SOP instance UIDs of the stored (de-identified) file."""
    path = blobs.path(f"{storage_dir}/{DICOM_FILE}")
    ds = pydicom.dcmread(
        path,
        stop_before_pixels=True,
        specific_tags=["StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"],
    )
    return str(ds.get("StudyInstanceUID", "")), str(ds.get("SeriesInstanceUID", "")), str(ds.SOPInstanceUID)


def _title(ref: InstanceRef) -> str:
    parts = [ref.modality or "DICOM"]
    if ref.series_number:
        parts.append(f"series {ref.series_number}")
    if ref.instance_number:
        parts.append(f"image {ref.instance_number}")
    return " ".join(parts)


def _skip_reason(exc: Exception) -> str:
    detail = getattr(exc, "detail", None)
    return str(detail) if isinstance(detail, str) else str(exc)


class Importer:
    """Runs one import. ``check`` is called between instances (raises to stop: cancel/lost job)."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        dataset_id: int,
        job_id: int | None,
        connect: Callable[[], DICOMwebClient],
        url: str,
        check: Callable[[], None] = lambda: None,
        progress: Callable[[float, dict[str, Any]], None] = lambda _p, _i: None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.dataset_id = dataset_id
        self.job_id = job_id
        self.url = url
        self.blobs = BlobStore(settings.blob_dir)
        self._connect = connect
        self._local = threading.local()
        self.check = check
        self.progress = progress

    def _client(self) -> DICOMwebClient:
        client: DICOMwebClient | None = getattr(self._local, "client", None)
        if client is None:
            client = self._connect()
            self._local.client = client
        return client

    # ---- listing ------------------------------------------------------------------------------
    def list_instances(self, query: ImportQuery, report: ImportReport) -> list[InstanceRef]:
        """Every instance the query selects (raises PacsError when the PACS fails)."""
        client = self._client()
        try:
            studies, report.missing_studies = find_studies(client, query)
            refs = [ref for uid in studies for ref in iter_instances(client, uid, query.modality)]
        except requests.RequestException as exc:
            raise PacsError(describe(exc, self.url)) from None
        report.studies = len(studies)
        report.instances = len(refs)
        return refs

    def _already_imported(self) -> set[str]:
        with self.db.session() as session:
            return set(
                session.scalars(select(PacsImport.sop_key).where(PacsImport.dataset_id == self.dataset_id))
            )

    # ---- storing ------------------------------------------------------------------------------
    def _store(self, ref: InstanceRef, key: str, ds: DicomDataset) -> int:
        """Ingest one retrieved instance with its dedupe row and UID link, in one transaction."""
        try:
            data = _encode(ds)
        except Exception as exc:  # an object pydicom read but cannot write back
            raise _Skip(f"the object cannot be re-encoded as DICOM ({type(exc).__name__})") from None
        sop_class = ref.sop_class_uid or str(ds.get("SOPClassUID", ""))
        del ds
        storage_dir: str | None = None
        try:
            with self.db.session() as session:
                dataset = session.get(Dataset, self.dataset_id)
                if dataset is None:
                    raise PacsError(f"dataset {self.dataset_id} no longer exists")
                try:
                    case = create_case(
                        session,
                        self.blobs,
                        dataset=dataset,
                        data=data,
                        max_pixels=self.settings.max_image_pixels,
                        uid_salt=self.settings.uid_salt,
                        uploaded_by=None,
                        title=_title(ref),
                    )
                except DomainError as exc:  # imaging errors are domain errors too
                    raise _Skip(_skip_reason(exc)) from None
                assert case.image is not None
                storage_dir = case.image.storage_dir
                study, series, sop = _deidentified_uids(self.blobs, storage_dir)
                session.add(
                    PacsImport(dataset_id=self.dataset_id, sop_key=key, case_id=case.id, job_id=self.job_id)
                )
                session.add(
                    PacsUidLink(
                        case_id=case.id,
                        source_url=self.url,
                        sop_class_uid=sop_class,
                        original_study_uid=ref.study_uid,
                        original_series_uid=ref.series_uid,
                        original_sop_uid=ref.sop_uid,
                        deid_study_uid=study,
                        deid_series_uid=series,
                        deid_sop_uid=sop,
                    )
                )
                session.flush()
                case_id = case.id
        except BaseException:
            # The transaction rolled back: remove its files (create_case does so only for its own errors).
            if storage_dir is not None:
                self.blobs.remove_tree(storage_dir)
            raise
        return case_id

    def _retrievals(
        self, pending: list[tuple[InstanceRef, str]]
    ) -> Iterator[tuple[InstanceRef, str, Future[Any]]]:
        """(ref, key, future of the retrieved data set) in order, at most PREFETCH ahead."""
        with ThreadPoolExecutor(max_workers=PREFETCH, thread_name_prefix="wado") as pool:
            window: deque[tuple[InstanceRef, str, Future[Any]]] = deque()
            todo: Iterable[tuple[InstanceRef, str]] = iter(pending)
            try:
                for ref, key in todo:
                    window.append((ref, key, pool.submit(lambda r: _retrieve(self._client(), r), ref)))
                    if len(window) > PREFETCH:
                        yield window.popleft()
                while window:
                    yield window.popleft()
            finally:
                for _, _, fut in window:
                    fut.cancel()

    def run(self, query: ImportQuery) -> ImportReport:
        """List, retrieve and store; raises PacsError when the PACS fails (whole instances stay stored)."""
        report = ImportReport(url=self.url)
        self.progress(0.0, {"phase": "query"})
        refs = self.list_instances(query, report)
        done_keys = self._already_imported()
        pending: list[tuple[InstanceRef, str]] = []
        for ref in refs:
            key = sop_key(ref.sop_uid, self.settings.uid_salt)
            if key in done_keys:
                report.already_imported += 1
            else:
                done_keys.add(key)  # the same instance listed twice is retrieved once
                pending.append((ref, key))
        self._report_progress(report)
        for ref, key, future in self._retrievals(pending):
            self.check()
            try:
                case_id = self._store(ref, key, future.result())
            except _Skip as exc:
                report.skip(ref, str(exc))
            else:
                report.imported += 1
                report.case_ids.append(case_id)
            self._report_progress(report)
        logger.info(
            "PACS import into dataset %s: %d imported, %d already there, %d skipped",
            self.dataset_id,
            report.imported,
            report.already_imported,
            report.skipped_count,
        )
        return report

    def _report_progress(self, report: ImportReport) -> None:
        handled = report.imported + report.already_imported + report.skipped_count
        self.progress(
            handled / report.instances if report.instances else 1.0,
            {
                "phase": "retrieve",
                "instances": report.instances,
                "imported": report.imported,
                "already_imported": report.already_imported,
                "skipped": report.skipped_count,
            },
        )
