"""Import instances from a PACS into a dataset: QIDO-RS listing, WADO-RS retrieval, de-identified ingest.

Each instance is retrieved as the raw bytes of its ``application/dicom`` part and handed to the upload
path's in-memory ingest (:func:`server.imaging.ingest_image`: parse once, de-identify, render);
only de-identified files reach the disk. A few threads retrieve instances ahead and hand each to a
small pool of ingest processes (:mod:`server.pacs.ingest_pool`) while the job's thread stores the
ones that are ready: network waits, de-identification and fsyncs overlap, and the prefetch window
bounds memory.

Instances are stored in batches of whatever is ready (at most :data:`MAX_BATCH`): each batch's files
are written, fsynced together (concurrent fsyncs share journal commits) and only then its cases,
dedupe rows (``pacs_imports``) and UID links (``pacs_uid_links``) are committed in one transaction.
Progress counts committed instances only, so a killed or failed import leaves whole instances, and
the next run skips them.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import logging
import os
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pydicom
import requests
from dicomweb_client.api import DICOMwebClient
from sqlalchemy import select

from server.cases.service import check_burned_in_annotation, store_case
from server.db import Database
from server.exceptions import DomainError
from server.imaging import IngestedImage, ingest_image
from server.models import Dataset, PacsImport, PacsUidLink
from server.pacs.client import PacsError, describe, retrieve_instance_bytes, status_of
from server.pacs.ingest_pool import ingest_pool, warm_up
from server.pacs.query import ImportQuery, InstanceRef, find_studies, iter_instances
from server.settings import Settings
from server.storage import BlobStore

logger = logging.getLogger(__name__)

#: Threads retrieving instances ahead of storage (each waits for its instance's ingest process).
WORKERS = 4
#: Processes de-identifying and rendering: pydicom holds the GIL, so threads alone would not overlap it.
INGEST_PROCESSES = max(1, min(WORKERS, os.cpu_count() or 1))
#: Instances retrieved or ingested but not yet stored, at most (bounds memory).
PREFETCH = 2 * WORKERS
#: Instances committed in one transaction, at most (a batch is what is ready, so often fewer).
MAX_BATCH = 16
#: Threads fsyncing a batch's files concurrently.
SYNC_THREADS = 8
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


@dataclass(frozen=True)
class _Skipped:
    """An instance that cannot be imported, and why (for the job report)."""

    ref: InstanceRef
    reason: str


@dataclass
class _Ready:
    """A retrieved, de-identified instance waiting to be stored (memory only)."""

    ref: InstanceRef
    key: str
    image: IngestedImage


def _retrieve(client: DICOMwebClient, ref: InstanceRef) -> bytes:
    """WADO-RS retrieve one instance's bytes in its stored transfer syntax.

    Raises:
        _Skip: the instance is gone or the answer holds no object.
        PacsError: the PACS failed (unreachable, refused, server error): the import must stop.
    """
    try:
        data = retrieve_instance_bytes(client, ref.study_uid, ref.series_uid, ref.sop_uid)
    except requests.RequestException as exc:
        if status_of(exc) in _INSTANCE_GONE:
            raise _Skip(f"the PACS no longer has it (HTTP {status_of(exc)})") from None
        raise PacsError(describe(exc, client.base_url)) from None
    except ValueError as exc:  # not a multipart answer
        raise _Skip(f"the PACS answered an unreadable object ({type(exc).__name__})") from None
    if not data:
        raise _Skip("the PACS answered no object")
    return data


def _sop_class(image: IngestedImage) -> str:
    """SOPClassUID of the stored file, for a listing that did not give it (class UIDs are kept)."""
    assert image.deidentified_dicom is not None
    ds = pydicom.dcmread(
        io.BytesIO(image.deidentified_dicom), stop_before_pixels=True, specific_tags=["SOPClassUID"]
    )
    return str(ds.get("SOPClassUID", ""))


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
    """Runs one import. ``check`` is called between batches (raises to stop: cancel/lost job)."""

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
        self._ingest_pool: ProcessPoolExecutor | None = None

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

    # ---- retrieving and de-identifying (worker threads) --------------------------------------
    def _prepare(self, ref: InstanceRef, key: str) -> _Ready | _Skipped:
        """Retrieve one instance and ingest it in memory (the upload path's decode and de-identification).

        The ingest runs in a child process; the original bytes travel there through a pipe, never
        through a file, and only the de-identified forms come back.

        Raises:
            PacsError: the PACS failed; the import must stop.
        """
        assert self._ingest_pool is not None
        try:
            data = _retrieve(self._client(), ref)
        except _Skip as exc:
            return _Skipped(ref, str(exc))
        ingest = self._ingest_pool.submit(
            ingest_image, data, max_pixels=self.settings.max_image_pixels, uid_salt=self.settings.uid_salt
        )
        del data  # the original, with PHI, is not kept here
        try:
            image = ingest.result()
        except DomainError as exc:  # imaging errors are domain errors: the reasons an upload is refused with
            return _Skipped(ref, _skip_reason(exc))
        return _Ready(ref, key, image)

    def _prepared(
        self, pending: list[tuple[InstanceRef, str]]
    ) -> Generator[Future[_Ready | _Skipped], None, None]:
        """Futures of the prepared instances in listing order, at most PREFETCH ahead of the consumer."""
        with ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="pacs-import") as pool:
            window: deque[Future[_Ready | _Skipped]] = deque()
            try:
                for ref, key in pending:
                    window.append(pool.submit(self._prepare, ref, key))
                    if len(window) > PREFETCH:
                        yield window.popleft()
                while window:
                    yield window.popleft()
            finally:
                for fut in window:
                    fut.cancel()

    # ---- storing (the job's thread) ------------------------------------------------------------
    def _store_batch(self, batch: list[_Ready], report: ImportReport, sync_pool: ThreadPoolExecutor) -> None:
        """Store ready instances: files, then one fsync round, then one commit of all their rows."""
        storage_dirs: list[str] = []
        stored: list[int] = []
        try:
            with self.db.session() as session:
                dataset = session.get(Dataset, self.dataset_id)
                if dataset is None:
                    raise PacsError(f"dataset {self.dataset_id} no longer exists")
                for ready in batch:
                    try:
                        check_burned_in_annotation(ready.image.metadata, dataset)
                    except DomainError as exc:
                        report.skip(ready.ref, _skip_reason(exc))
                        continue
                    stored.append(self._store_one(session, dataset, ready, storage_dirs))
                # Every file of the batch is durable before any row naming it is committed.
                self.blobs.sync_trees(storage_dirs, pool=sync_pool)
        except BaseException:
            # The transaction rolled back: remove its files (store_case does so only for its own errors).
            for storage_dir in storage_dirs:
                self.blobs.remove_tree(storage_dir)
            raise
        report.imported += len(stored)
        report.case_ids.extend(stored)

    def _store_one(self, session: Any, dataset: Dataset, ready: _Ready, storage_dirs: list[str]) -> int:
        """One instance's case, files (not yet fsynced), dedupe row and UID link; returns the case id."""
        ref, image = ready.ref, ready.image
        case = store_case(
            session,
            self.blobs,
            dataset=dataset,
            image=image,
            uploaded_by=None,
            title=_title(ref),
            sync=False,
        )
        assert case.image is not None and image.deidentified_uids is not None
        storage_dirs.append(case.image.storage_dir)
        study, series, sop = image.deidentified_uids
        session.add(
            PacsImport(dataset_id=self.dataset_id, sop_key=ready.key, case_id=case.id, job_id=self.job_id)
        )
        session.add(
            PacsUidLink(
                case_id=case.id,
                source_url=self.url,
                sop_class_uid=ref.sop_class_uid or _sop_class(image),
                original_study_uid=ref.study_uid,
                original_series_uid=ref.series_uid,
                original_sop_uid=ref.sop_uid,
                deid_study_uid=study,
                deid_series_uid=series,
                deid_sop_uid=sop,
            )
        )
        session.flush()
        return int(case.id)

    def _batches(
        self, futures: Iterator[Future[_Ready | _Skipped]], report: ImportReport
    ) -> Iterator[list[_Ready]]:
        """Batches of prepared instances: the next one (waiting for it) plus those already done after it.

        Skipped instances are recorded on the way (a batch may be empty). A failing PACS raises
        PacsError, after the instances prepared before the failure were handed on as a batch.
        """
        fut = next(futures, None)
        while fut is not None:
            batch: list[_Ready] = []
            while fut is not None:
                try:
                    outcome = fut.result()
                except PacsError:
                    if batch:
                        yield batch
                    raise
                if isinstance(outcome, _Skipped):
                    report.skip(outcome.ref, outcome.reason)
                else:
                    batch.append(outcome)
                fut = next(futures, None)
                if fut is None or len(batch) >= MAX_BATCH or not fut.done():
                    break
            yield batch

    def run(self, query: ImportQuery) -> ImportReport:
        """List, retrieve and store; raises PacsError when the PACS fails (whole instances stay stored)."""
        report = ImportReport(url=self.url)
        self.progress(0.0, {"phase": "query"})
        # The ingest processes start while the PACS is queried (their start costs about a second).
        self._ingest_pool = pool = ingest_pool(INGEST_PROCESSES)
        try:
            warm_up(pool, INGEST_PROCESSES)
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
            self._store_all(pending, report)
        finally:
            pool.shutdown(cancel_futures=True)
            self._ingest_pool = None
        logger.info(
            "PACS import into dataset %s: %d imported, %d already there, %d skipped",
            self.dataset_id,
            report.imported,
            report.already_imported,
            report.skipped_count,
        )
        return report

    def _store_all(self, pending: list[tuple[InstanceRef, str]], report: ImportReport) -> None:
        """Retrieve, ingest and store ``pending`` batch by batch, reporting progress after each commit."""
        prepared = self._prepared(pending)
        try:
            with ThreadPoolExecutor(max_workers=SYNC_THREADS, thread_name_prefix="pacs-fsync") as sync_pool:
                for batch in self._batches(prepared, report):
                    self.check()
                    if batch:
                        self._store_batch(batch, report, sync_pool)
                    self._report_progress(report)
        finally:
            prepared.close()  # cancels the retrievals not started yet and waits for the running ones

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
