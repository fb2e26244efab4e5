"""Writing parsed gaze into the database: all sessions of a file in one transaction, or none.

Samples go through ``server.reading.store.store_frames`` (the write path of the live stream) in
chunks of at most ``CHUNK_SAMPLES``, so imported sessions are stored exactly like recorded ones.
A session whose source data was imported before (same import key, or for bundles an identical
session of the same reader on the same case) is skipped and reported, so re-running an import
is harmless.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from server.interchange.cases import CaseImage
from server.interchange.records import ImportFailed, RowError, SessionRecord, check_samples
from server.models import (
    Case,
    Dataset,
    DiagnosisLabel,
    ReadingSession,
    Role,
    SessionEvent,
    SessionStatus,
    StoredImage,
    User,
    utcnow,
)
from server.reading.frames import MAX_SAMPLES_PER_FRAME
from server.reading.store import FrameIn, store_frames

logger = logging.getLogger(__name__)

CHUNK_SAMPLES = MAX_SAMPLES_PER_FRAME
#: Samples buffered before a batch of sessions is written (~30 MB of samples).
BATCH_SAMPLES = 200_000
BUNDLE_KEY_PREFIX = "bundle:"
#: Not an argon2 hash: verification always fails, so the account can never log in.
UNUSABLE_PASSWORD = "!imported"


@dataclass
class ImportReport:
    """What an import did.

    Attributes:
        created: New session ids.
        skipped: Keys of sessions imported before.
        samples: Samples stored.
        missing_cases: External ids the data references but the dataset lacks (-> first place).
        ignored: Ids the data set marks as not to import, e.g. calibration screens (-> why).
        readers_created: Pseudonymous reader accounts created.
        labels_set: Cases whose reference label or attributes were set.
        label_conflicts: Cases whose existing reference label differs from the data set's (kept).
        annotations: Annotations stored.
        annotations_skipped: Annotations not stored (-> why).
        events: Session events (transcript phrases/words) stored.
        session_ids: Import key -> id of each session created.
    """

    created: list[int] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    samples: int = 0
    missing_cases: dict[str, str] = field(default_factory=dict)
    ignored: dict[str, str] = field(default_factory=dict)
    readers_created: list[str] = field(default_factory=list)
    labels_set: int = 0
    label_conflicts: dict[str, str] = field(default_factory=dict)
    annotations: int = 0
    annotations_skipped: dict[str, str] = field(default_factory=dict)
    events: int = 0
    session_ids: dict[str, int] = field(default_factory=dict)


def find_dataset(session: Session, ref: str) -> Dataset:
    """A dataset by id or name.

    Raises:
        LookupError: no such dataset.
    """
    dataset = session.get(Dataset, int(ref)) if ref.isdigit() else None
    dataset = dataset or session.scalar(select(Dataset).where(Dataset.name == ref))
    if dataset is None:
        raise LookupError(f"no dataset {ref!r} (give its name or id)")
    return dataset


def case_lookup(
    session: Session,
    dataset: Dataset,
    *,
    originals: Callable[[str], tuple[int, int] | None] | None = None,
    create: Callable[[str], CaseImage | None] | None = None,
) -> Callable[[str], CaseImage | None]:
    """External id -> stored image of the dataset's case (cached).

    Args:
        originals: Original image size by external id (e.g. read from the data set's DICOMs),
            for cases not stored from a DICOM.
        create: Called for an external id the dataset lacks; may create the case.
    """
    cache: dict[str, CaseImage | None] = {}
    stored: dict[str, tuple[int, int, int, float, float, int, bool]] = {}
    loaded = False

    def lookup(external_id: str) -> CaseImage | None:
        nonlocal loaded
        if not loaded:
            # One query for the whole dataset: a data set import asks for thousands of images.
            query = (
                select(
                    Case.external_id,
                    Case.id,
                    StoredImage.width,
                    StoredImage.height,
                    StoredImage.window_center,
                    StoredImage.window_width,
                    StoredImage.bits_stored,
                    StoredImage.has_dicom,
                )
                .join(StoredImage, StoredImage.case_id == Case.id)
                .where(Case.dataset_id == dataset.id, Case.external_id.is_not(None))
            )
            stored.update((row[0], tuple(row[1:])) for row in session.execute(query))  # type: ignore[misc]
            loaded = True
        if external_id not in cache:
            row = stored.get(external_id)
            image = None
            if row is not None:
                case_id, width, height, center, wl_width, bits, from_dicom = row
                # A stored DICOM keeps its pixel size, so it *is* the original the data set measured.
                original = (width, height) if from_dicom else originals(external_id) if originals else None
                image = CaseImage(case_id, width, height, center, wl_width, bits, from_dicom, original)
            elif create is not None:
                image = create(external_id)
            cache[external_id] = image
        return cache[external_id]

    return lookup


def is_bundle_record(record: SessionRecord) -> bool:
    return record.key.startswith(BUNDLE_KEY_PREFIX)


def _duplicate(session: Session, record: SessionRecord, case_id: int, reader_id: int) -> bool:
    candidates = session.scalars(
        select(ReadingSession).where(
            ReadingSession.case_id == case_id,
            ReadingSession.reader_id == reader_id,
            ReadingSession.source == record.source,
        )
    )
    key = None if is_bundle_record(record) else (record.source_info.get("import") or {}).get("key")
    for other in candidates:
        if key is not None:
            if (other.source_info.get("import") or {}).get("key") == key:
                return True
        elif (
            other.source_info == record.source_info
            and other.display_info == record.display_info
            and other.sample_count == record.samples.shape[0]
        ):
            return True
    return False


def import_records(
    session: Session,
    dataset: Dataset,
    records: Iterable[SessionRecord],
    *,
    reader: str | None,
    lookup: Callable[[str], CaseImage | None],
    report: ImportReport | None = None,
) -> ImportReport:
    """Create finished sessions for ``records`` inside the caller's transaction.

    Records are consumed one at a time and written as they come, so a large import never holds
    more than one session's samples; if any record turns out unusable, ``ImportFailed`` is raised
    and the caller's rollback removes what was written (nothing is committed).

    Args:
        session: Open ORM session; the caller commits (or rolls back on an exception).
        dataset: Where cases are matched by external id.
        records: Parsed sessions.
        reader: Username for the sessions: for dataset imports it replaces the data set's own
            (pseudonymous) readers; for bundles it fills in only where an entry names none.
        lookup: Case lookup for ``dataset``.
        report: Report to add to.

    Raises:
        ImportFailed: any record is unusable (unknown case or reader, bad samples, bad label).
    """
    errors: list[RowError] = []
    report = report or ImportReport()
    users: dict[str, User | None] = {}
    batch = _Batch(session, report)
    known_keys: set[str] | None = None
    for record in records:
        bundle = is_bundle_record(record)
        if not bundle:
            # Dataset imports remember their source key so a second import of the same data is
            # skipped; bundle sessions keep their source_info exactly as exported.
            record.source_info.setdefault("import", {})["key"] = record.key
        problems = check_samples(record)
        name = record.reader if bundle and record.reader else reader or record.reader
        if name is None:
            problems.append(RowError(record.path, None, "no reader: give --reader USERNAME"))
        else:
            if name not in users:
                users[name] = session.scalar(select(User).where(User.username == name))
                if users[name] is None and record.pseudonymous_reader and name != reader:
                    users[name] = _pseudonymous_reader(session, name)
                    report.readers_created.append(name)
            if users[name] is None:
                problems.append(RowError(record.path, None, f"no user {name!r}"))
        case = lookup(record.case_ref)
        if case is None:
            problems.append(
                RowError(record.path, None, f"no case with external id {record.case_ref!r} in the dataset")
            )
        if record.label is not None and record.label.label not in dataset.label_set:
            problems.append(
                RowError(
                    record.path,
                    None,
                    f"label {record.label.label!r} is not in the label set {dataset.label_set}",
                )
            )
        errors += problems
        if errors:
            # Keep checking the rest so every problem is reported, but write nothing more.
            continue
        assert case is not None and name is not None
        user = users[name]
        assert user is not None
        if bundle:
            duplicate = _duplicate(session, record, case.case_id, user.id)
        else:
            if known_keys is None:
                known_keys = _imported_keys(session, dataset)
            duplicate = record.key in known_keys
        if duplicate:
            report.skipped.append(record.key)
            continue
        batch.add(record, case.case_id, user.id)
    if errors:
        raise ImportFailed(errors)
    batch.write()
    logger.info(
        "imported %d sessions (%d samples); %d already present",
        len(report.created),
        report.samples,
        len(report.skipped),
    )
    return report


def _pseudonymous_reader(session: Session, username: str) -> User:
    """A reader account standing for a data set's radiologist; it cannot log in (no password)."""
    user = User(
        username=username,
        display_name=f"{username} (imported, pseudonymous)",
        password_hash=UNUSABLE_PASSWORD,
        role=Role.reader,
    )
    session.add(user)
    session.flush()
    logger.info("created pseudonymous reader %s", username)
    return user


def _imported_keys(session: Session, dataset: Dataset) -> set[str]:
    """Import keys of the dataset's sessions imported before (one query for the whole import)."""
    query = (
        select(ReadingSession.source_info)
        .join(Case, Case.id == ReadingSession.case_id)
        .where(Case.dataset_id == dataset.id, ReadingSession.source == "import")
    )
    return {key for info in session.scalars(query) if (key := (info.get("import") or {}).get("key"))}


class _Batch:
    """Sessions written together: one session insert, one chunk insert and one status update per
    batch instead of per session (a data set has thousands of short sessions). A batch holds at
    most ``BATCH_SAMPLES`` samples, so memory stays bounded."""

    def __init__(self, session: Session, report: ImportReport) -> None:
        self.session = session
        self.report = report
        self.items: list[tuple[SessionRecord, int, int]] = []
        self.samples = 0

    def add(self, record: SessionRecord, case_id: int, reader_id: int) -> None:
        self.items.append((record, case_id, reader_id))
        self.samples += int(record.samples.shape[0])
        if self.samples >= BATCH_SAMPLES:
            self.write()

    def _insert_sessions(self, rows: list[dict[str, Any]]) -> list[int]:
        """Insert the sessions; their ids in the order of ``rows``."""
        stmt = insert(ReadingSession).returning(ReadingSession.id, sort_by_parameter_order=True)
        return list(self.session.scalars(stmt, rows))

    def write(self) -> None:
        if not self.items:
            return
        session, report = self.session, self.report
        # Core-style bulk statements (one INSERT and one UPDATE per batch, ids returned in
        # parameter order): the ORM's per-object bookkeeping cost more than the database work.
        rows = [
            {
                "case_id": case_id,
                "reader_id": reader_id,
                "source": record.source,
                "source_info": record.source_info,
                "display_info": record.display_info,
                "status": SessionStatus.open,
                **({"started_at": record.started_at} if record.started_at is not None else {}),
            }
            for record, case_id, reader_id in self.items
        ]
        ids = self._insert_sessions(rows)
        frames = [
            FrameIn(session_id, reader_id, seq, record.samples[start : start + CHUNK_SAMPLES])
            for session_id, (record, _, reader_id) in zip(ids, self.items, strict=True)
            for seq, start in enumerate(range(0, record.samples.shape[0], CHUNK_SAMPLES))
        ]
        results = store_frames(session, frames, optimistic=True)
        failed = [r for r in results if not r.inserted]
        if failed:
            # Cannot happen for sessions created above; refuse rather than store a partial session.
            raise RuntimeError(f"chunk not stored ({failed[0].code}: {failed[0].detail})")
        finished = []
        for session_id, (record, case_id, reader_id) in zip(ids, self.items, strict=True):
            # Chunk counters were updated by SQL; only the status and end time are set here.
            end = record.finished_at or utcnow()
            finished.append({"id": session_id, "status": SessionStatus.finished, "finished_at": end})
            if record.label is not None:
                session.add(
                    DiagnosisLabel(
                        session_id=session_id,
                        case_id=case_id,
                        reader_id=reader_id,
                        label=record.label.label,
                        confidence=record.label.confidence,
                        finding_box=record.label.finding_box,
                        attributes=record.label.attributes,
                    )
                )
            session.add_all(
                SessionEvent(
                    session_id=session_id,
                    kind=e.kind,
                    t_ms=e.t_ms,
                    t_end_ms=e.t_end_ms,
                    text=e.text,
                    data=e.data,
                )
                for e in record.events
            )
            report.created.append(session_id)
            report.session_ids[record.key] = session_id
            report.samples += int(record.samples.shape[0])
            report.events += len(record.events)
        session.execute(update(ReadingSession), finished)
        session.flush()
        self.items = []
        self.samples = 0
