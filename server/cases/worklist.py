"""A reader's worklist: each assigned case with the reader's status on it, filters, counts, skip."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import ScalarSelect, func, select
from sqlalchemy.orm import Session

from server.exceptions import NotFound
from server.models import Assignment, Case, DiagnosisLabel, ReadingSession, SessionStatus, User


class WorklistStatus(enum.StrEnum):
    """Where a reader stands on one case of their worklist (contract: GET /api/worklist ``status``)."""

    unread = "unread"
    in_progress = "in_progress"
    read = "read"
    skipped = "skipped"


@dataclass(frozen=True)
class WorklistEntry:
    assignment: Assignment
    case: Case
    sessions: int
    status: WorklistStatus
    #: The reader's latest diagnosis on the case, if any.
    label: str | None
    last_read_at: datetime | None


def entry_status(*, finished: int, open_: int, skipped: bool) -> WorklistStatus:
    """Read beats everything (a finished session); an open session is work in progress (even on a
    skipped case the reader came back to); a set-aside case is skipped; anything else is unread.
    Abandoned and aborted sessions leave the case unread: nothing usable was recorded."""
    if finished:
        return WorklistStatus.read
    if open_:
        return WorklistStatus.in_progress
    return WorklistStatus.skipped if skipped else WorklistStatus.unread


def worklist_entries(session: Session, reader: User) -> list[WorklistEntry]:
    """The reader's assignments in worklist order (priority, then case id), each with its status."""

    def count(state: SessionStatus | None) -> ScalarSelect[int]:
        query = select(func.count(ReadingSession.id)).where(
            ReadingSession.case_id == Case.id, ReadingSession.reader_id == reader.id
        )
        if state is not None:
            query = query.where(ReadingSession.status == state)
        return query.scalar_subquery()

    last_finished = (
        select(func.max(ReadingSession.finished_at))
        .where(ReadingSession.case_id == Case.id, ReadingSession.reader_id == reader.id)
        .scalar_subquery()
    )
    latest_label = (
        select(DiagnosisLabel.label)
        .where(DiagnosisLabel.case_id == Case.id, DiagnosisLabel.reader_id == reader.id)
        .order_by(DiagnosisLabel.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    stmt = (
        select(
            Assignment,
            Case,
            count(None),
            count(SessionStatus.finished),
            count(SessionStatus.open),
            latest_label,
            last_finished,
        )
        .join(Case, Case.id == Assignment.case_id)
        .where(Assignment.reader_id == reader.id)
        .order_by(Assignment.priority, Case.id)
    )
    entries = []
    for a, case, n, finished, open_, label, last in session.execute(stmt).unique():
        state = entry_status(
            finished=int(finished or 0), open_=int(open_ or 0), skipped=a.skipped_at is not None
        )
        entries.append(WorklistEntry(a, case, int(n or 0), state, label, last))
    return entries


def set_skipped(session: Session, reader: User, case_id: int, skipped: bool) -> Assignment:
    """Set a case on the reader's own worklist aside (or bring it back).

    Raises:
        NotFound: the case is not on the reader's worklist.
    """
    assignment = session.scalar(
        select(Assignment).where(Assignment.case_id == case_id, Assignment.reader_id == reader.id)
    )
    if assignment is None:
        raise NotFound(f"case {case_id} is not on your worklist")
    assignment.skipped_at = datetime.now(UTC) if skipped else None
    session.flush()
    return assignment


def status_counts(entries: list[WorklistEntry]) -> dict[str, int]:
    """Entries per status (every status present, zeros included)."""
    counts = {s.value: 0 for s in WorklistStatus}
    for entry in entries:
        counts[entry.status.value] += 1
    return counts
