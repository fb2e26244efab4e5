"""Writing parsed gaze into the database: all sessions of a file in one transaction, or none.

Samples go through ``server.reading.store.store_frames`` (the write path of the live stream) in
chunks of at most ``CHUNK_SAMPLES``, so imported sessions are stored exactly like recorded ones.
A session whose source data was imported before (same import key, or for bundles an identical
session of the same reader on the same case) is skipped and reported, so re-running an import
is harmless.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.interchange.cases import CaseImage
from server.interchange.records import ImportFailed, RowError, SessionRecord, check_samples
from server.models import (
    Case,
    Dataset,
    DiagnosisLabel,
    ReadingSession,
    SessionStatus,
    StoredImage,
    User,
    utcnow,
)
from server.reading.frames import MAX_SAMPLES_PER_FRAME
from server.reading.store import FrameIn, store_frames

logger = logging.getLogger(__name__)

CHUNK_SAMPLES = MAX_SAMPLES_PER_FRAME
BUNDLE_KEY_PREFIX = "bundle:"


@dataclass
class ImportReport:
    """What an import did."""

    created: list[int] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    samples: int = 0


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


def case_lookup(session: Session, dataset: Dataset) -> Callable[[str], CaseImage | None]:
    """External id -> stored image of the dataset's case (cached)."""
    cache: dict[str, CaseImage | None] = {}

    def lookup(external_id: str) -> CaseImage | None:
        if external_id not in cache:
            row = session.execute(
                select(
                    Case.id,
                    StoredImage.width,
                    StoredImage.height,
                    StoredImage.window_center,
                    StoredImage.window_width,
                )
                .join(StoredImage, StoredImage.case_id == Case.id)
                .where(Case.dataset_id == dataset.id, Case.external_id == external_id)
            ).first()
            cache[external_id] = CaseImage(*row) if row is not None else None
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
    records: Sequence[SessionRecord],
    *,
    reader: str | None,
    lookup: Callable[[str], CaseImage | None],
) -> ImportReport:
    """Create finished sessions for ``records`` inside the caller's transaction.

    Args:
        session: Open ORM session; the caller commits (or rolls back on an exception).
        dataset: Where cases are matched by external id.
        records: Parsed sessions.
        reader: Username for records that do not name their reader (overrides nothing else).
        lookup: Case lookup for ``dataset``.

    Raises:
        ImportFailed: any record is unusable (unknown case or reader, bad samples, bad label);
            nothing has been written when it is raised.
    """
    errors: list[RowError] = []
    users: dict[str, User | None] = {}
    plan: list[tuple[SessionRecord, int, int]] = []
    for record in records:
        if not is_bundle_record(record):
            # Dataset imports remember their source key so a second import of the same data is
            # skipped; bundle sessions keep their source_info exactly as exported.
            record.source_info.setdefault("import", {})["key"] = record.key
        errors += check_samples(record)
        name = record.reader or reader
        if name is None:
            errors.append(RowError(record.path, None, "no reader: give --reader USERNAME"))
            continue
        if name not in users:
            users[name] = session.scalar(select(User).where(User.username == name))
        user = users[name]
        if user is None:
            errors.append(RowError(record.path, None, f"no user {name!r}"))
            continue
        case = lookup(record.case_ref)
        if case is None:
            errors.append(
                RowError(record.path, None, f"no case with external id {record.case_ref!r} in the dataset")
            )
            continue
        if record.label is not None and record.label.label not in dataset.label_set:
            errors.append(
                RowError(
                    record.path,
                    None,
                    f"label {record.label.label!r} is not in the label set {dataset.label_set}",
                )
            )
        plan.append((record, case.case_id, user.id))
    if errors:
        raise ImportFailed(errors)

    report = ImportReport()
    for record, case_id, reader_id in plan:
        if _duplicate(session, record, case_id, reader_id):
            report.skipped.append(record.key)
            continue
        report.created.append(_create(session, record, case_id, reader_id))
        report.samples += int(record.samples.shape[0])
    logger.info(
        "imported %d sessions (%d samples); %d already present",
        len(report.created),
        report.samples,
        len(report.skipped),
    )
    return report


def _create(session: Session, record: SessionRecord, case_id: int, reader_id: int) -> int:
    reading = ReadingSession(
        case_id=case_id,
        reader_id=reader_id,
        source=record.source,
        source_info=record.source_info,
        display_info=record.display_info,
        status=SessionStatus.open,
    )
    if record.started_at is not None:
        reading.started_at = record.started_at
    session.add(reading)
    session.flush()
    frames = [
        FrameIn(
            session_id=reading.id,
            reader_id=reader_id,
            seq=seq,
            samples=record.samples[start : start + CHUNK_SAMPLES],
        )
        for seq, start in enumerate(range(0, record.samples.shape[0], CHUNK_SAMPLES))
    ]
    results = store_frames(session, frames)
    failed = [r for r in results if not r.inserted]
    if failed:
        # Cannot happen for a session created above; refuse rather than store a partial session.
        raise RuntimeError(f"session {reading.id}: chunk not stored ({failed[0].code}: {failed[0].detail})")
    session.refresh(reading)
    reading.status = SessionStatus.finished
    reading.finished_at = record.finished_at or utcnow()
    if record.label is not None:
        session.add(
            DiagnosisLabel(
                session_id=reading.id,
                case_id=case_id,
                reader_id=reader_id,
                label=record.label.label,
                confidence=record.label.confidence,
                finding_box=record.label.finding_box,
            )
        )
    session.flush()
    return reading.id
