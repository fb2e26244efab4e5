"""Import instances from a PACS into a dataset: QIDO-RS listing, WADO-RS retrieval, de-identified ingest.

Each instance is retrieved as the raw bytes of its ``application/dicom`` part and handed to the upload
path's in-memory ingest (:func:`server.imaging.ingest_image`: parse once, de-identify, render);
only de-identified files reach the disk. A series to be imported (mostly) whole is retrieved with one
streamed WADO-RS request (per-request costs on both sides are then paid once per series, not once
per instance); its parts are matched to the listed instances by their de-identified SOP instance UID
(the keyed remapping of the original), and a listed instance its answer did not deliver usably is
retrieved on its own. A producer thread retrieves ahead and hands each part to a small pool of ingest
processes (:mod:`server.pacs.ingest_pool`) while the job's thread stores the ones that are ready:
network waits, de-identification and fsyncs overlap, and the prefetch window bounds memory.

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
import queue
import threading
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
from server.imaging.deid import remap_uid
from server.models import Dataset, PacsImport, PacsUidLink
from server.pacs.client import PacsError, describe, iter_series_parts, retrieve_instance_bytes, status_of
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
#: A series is retrieved in one request when at least this many of its instances are to be imported
#: and they are at least half of those listed (otherwise instance by instance).
SERIES_MIN = 2
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


def _plan(
    refs: list[InstanceRef], pending: list[tuple[InstanceRef, str]]
) -> list[tuple[str, str, list[tuple[InstanceRef, str]], bool]]:
    """The pending instances grouped by series, in listing order, each group marked True when the
    series is to be retrieved in one request (:data:`SERIES_MIN`; instances already imported are
    still in a series answer, so a series that is mostly imported is retrieved instance by instance).
    """
    listed: dict[tuple[str, str], int] = {}
    for ref in refs:
        listed[(ref.study_uid, ref.series_uid)] = listed.get((ref.study_uid, ref.series_uid), 0) + 1
    groups: dict[tuple[str, str], list[tuple[InstanceRef, str]]] = {}
    for ref, key in pending:
        groups.setdefault((ref.study_uid, ref.series_uid), []).append((ref, key))
    return [
        (study, series, items, len(items) >= SERIES_MIN and 2 * len(items) >= listed[(study, series)])
        for (study, series), items in groups.items()
    ]


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
        # Dedupe keys of the instances a series answer has delivered (shared by the ingest threads).
        self._claimed: set[str] = set()
        self._claim_lock = threading.Condition()
        # Series parts handed to ingest threads and not finished yet.
        self._outstanding = 0

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

    def _ingest_part(
        self, data: bytes, by_deid_sop: dict[str, tuple[InstanceRef, str]]
    ) -> _Ready | _Skipped | None:
        """Ingest one part of a series answer; None when it is not one of the instances to import.

        The part is matched to its listed instance by the de-identified SOPInstanceUID, which is the
        keyed remapping of the original one: no second parse of the original is needed. A part that
        cannot be ingested or matched is dropped here; its instance, not seen, is then retrieved on
        its own, which gives it its own skip reason.
        """
        try:
            return self._match_part(data, by_deid_sop)
        finally:
            with self._claim_lock:
                self._outstanding -= 1
                self._claim_lock.notify_all()

    def _match_part(self, data: bytes, by_deid_sop: dict[str, tuple[InstanceRef, str]]) -> _Ready | None:
        assert self._ingest_pool is not None
        ingest = self._ingest_pool.submit(
            ingest_image, data, max_pixels=self.settings.max_image_pixels, uid_salt=self.settings.uid_salt
        )
        del data
        try:
            image = ingest.result()
        except DomainError:
            return None
        match = by_deid_sop.get(image.deidentified_uids[2]) if image.deidentified_uids else None
        if match is None:
            return None
        with self._claim_lock:
            if match[1] in self._claimed:  # the same instance twice in one answer
                return None
            self._claimed.add(match[1])
        return _Ready(match[0], match[1], image)

    def _put(self, out: queue.Queue[Any], stop: threading.Event, item: Any) -> bool:
        """Hand ``item`` to the consumer, waiting while the window is full; False once stopped."""
        while not stop.is_set():
            try:
                out.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        if isinstance(item, Future):
            item.cancel()
        return False

    def _produce_series(
        self,
        study_uid: str,
        series_uid: str,
        items: list[tuple[InstanceRef, str]],
        out: queue.Queue[Any],
        stop: threading.Event,
        pool: ThreadPoolExecutor,
    ) -> list[tuple[InstanceRef, str]] | None:
        """Retrieve a series in one streamed request, queueing an ingest per part.

        Returns None when the series was answered (which instances it delivered is known once its
        parts are ingested), else the instances to retrieve one by one now ([] once stopped).
        """
        salt = self.settings.uid_salt
        by_deid_sop = {remap_uid(ref.sop_uid, salt): (ref, key) for ref, key in items}
        try:
            for data in iter_series_parts(self._client(), study_uid, series_uid):
                if stop.is_set():
                    return []
                with self._claim_lock:
                    self._outstanding += 1
                fut = pool.submit(self._ingest_part, data, by_deid_sop)
                del data
                if not self._put(out, stop, fut):
                    return []
        except requests.RequestException as exc:
            if status_of(exc) not in _INSTANCE_GONE:
                raise PacsError(describe(exc, self.url)) from None
            return items  # the series is gone as a whole: each instance gets its own answer
        except ValueError:
            return items  # not a multipart answer: try instance by instance
        return None

    def _produce(
        self,
        plan: list[tuple[str, str, list[tuple[InstanceRef, str]], bool]],
        out: queue.Queue[Any],
        stop: threading.Event,
        pool: ThreadPoolExecutor,
    ) -> None:
        """Queue futures of the prepared instances, series by series (the producer thread).

        Instances a series answer did not deliver usably are retrieved one by one at the end, once
        every part is ingested: waiting after each series would stall the retrieval, and keeping the
        parts' futures would keep their images in memory.
        """
        try:
            answered: list[list[tuple[InstanceRef, str]]] = []
            for study_uid, series_uid, items, whole in plan:
                if stop.is_set():
                    return
                left = self._produce_series(study_uid, series_uid, items, out, stop, pool) if whole else items
                if left is None:
                    answered.append(items)
                    continue
                for ref, key in left:
                    if not self._put(out, stop, pool.submit(self._prepare, ref, key)):
                        return
            with self._claim_lock:
                while not self._claim_lock.wait_for(lambda: self._outstanding == 0, timeout=0.2):
                    if stop.is_set():
                        return
                claimed = set(self._claimed)
            for items in answered:
                for ref, key in items:
                    if key not in claimed and not self._put(out, stop, pool.submit(self._prepare, ref, key)):
                        return
        except BaseException as exc:  # noqa: BLE001  (handed to the consumer, which raises it)
            failed: Future[_Ready | _Skipped | None] = Future()
            failed.set_exception(exc)
            self._put(out, stop, failed)
        finally:
            self._put(out, stop, None)

    def _prepared(
        self, plan: list[tuple[str, str, list[tuple[InstanceRef, str]], bool]]
    ) -> Generator[Future[_Ready | _Skipped | None], None, None]:
        """Futures of the prepared instances, at most PREFETCH ahead of the consumer.

        A producer thread retrieves (series in one streamed request where :func:`_plan` says so)
        while the consumer stores; the bounded queue holds the retrieval back when storing lags.
        """
        out: queue.Queue[Any] = queue.Queue(maxsize=PREFETCH)
        stop = threading.Event()
        with ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="pacs-import") as pool:
            producer = threading.Thread(
                target=self._produce, args=(plan, out, stop, pool), name="pacs-retrieve", daemon=True
            )
            producer.start()
            try:
                while (fut := out.get()) is not None:
                    yield fut
            finally:
                stop.set()
                while producer.is_alive():
                    try:
                        item = out.get(timeout=0.1)
                    except queue.Empty:
                        continue
                    if isinstance(item, Future):
                        item.cancel()
                producer.join()

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
        self, futures: Iterator[Future[_Ready | _Skipped | None]], report: ImportReport
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
                elif outcome is not None:  # None: a series part that is not to be imported
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
            self._store_all(_plan(refs, pending), report)
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

    def _store_all(
        self, plan: list[tuple[str, str, list[tuple[InstanceRef, str]], bool]], report: ImportReport
    ) -> None:
        """Retrieve, ingest and store ``plan`` batch by batch, reporting progress after each commit."""
        prepared = self._prepared(plan)
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
