"""Reading sessions: open, look up, annotate and finish them; read their samples back.

Visibility: admins see every session, readers only their own (anyone else's is "not found").
Changes (PATCH, finish) are reserved to the session's own reader: gaze and diagnosis belong to
the person who read the case.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.cases.service import visible_case
from server.exceptions import Conflict, Forbidden, Invalid, NotFound
from server.models import Case, DiagnosisLabel, GazeChunk, ReadingSession, SessionStatus, User, utcnow
from server.reading import samples as codec
from server.reading.quality import apply_gate
from server.reading.schemas import LabelPublic, SessionCreate, SessionFinish, SessionPublic
from trainer.arrays import FloatArray

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SessionFilters:
    case_id: int | None = None
    reader_id: int | None = None
    status: SessionStatus | None = None


def create_session(session: Session, user: User, body: SessionCreate) -> ReadingSession:
    """Open a session for ``user`` on a case on their worklist (admins: any case).

    Raises:
        NotFound: the case does not exist or is not on the reader's worklist.
    """
    case = visible_case(session, user, body.case_id)
    reading = ReadingSession(
        case_id=case.id,
        reader_id=user.id,
        source=body.source.value,
        source_info=body.source_info,
        display_info=body.display_info.model_dump(exclude_none=True),
        status=SessionStatus.open,
    )
    session.add(reading)
    session.flush()
    logger.info("reader %s opened session %s on case %s (%s)", user.id, reading.id, case.id, reading.source)
    return reading


def visible_session(session: Session, user: User, session_id: int, *, lock: bool = False) -> ReadingSession:
    """The session if ``user`` may see it.

    Args:
        lock: Lock the row for the rest of the transaction (before changing its status).

    Raises:
        NotFound: it does not exist or belongs to another reader (for readers).
    """
    query = select(ReadingSession).where(ReadingSession.id == session_id)
    if lock:
        # Re-read the row under the lock: chunk counters change through Core statements.
        query = query.with_for_update().execution_options(populate_existing=True)
    reading = session.scalar(query)
    if reading is None or (not user.is_admin and reading.reader_id != user.id):
        raise NotFound(f"session {session_id} not found")
    return reading


def _own_open_session(session: Session, user: User, session_id: int) -> ReadingSession:
    reading = visible_session(session, user, session_id, lock=True)
    if reading.reader_id != user.id:
        raise Forbidden("only the session's reader can change it")
    if reading.status != SessionStatus.open:
        raise Conflict(f"session {session_id} is {reading.status.value}")
    return reading


def list_sessions(
    session: Session, user: User, filters: SessionFilters, *, limit: int, offset: int
) -> list[ReadingSession]:
    """Sessions visible to ``user`` matching ``filters``, newest first."""
    query = select(ReadingSession)
    if not user.is_admin:
        query = query.where(ReadingSession.reader_id == user.id)
    elif filters.reader_id is not None:
        query = query.where(ReadingSession.reader_id == filters.reader_id)
    if filters.case_id is not None:
        query = query.where(ReadingSession.case_id == filters.case_id)
    if filters.status is not None:
        query = query.where(ReadingSession.status == filters.status)
    query = query.order_by(ReadingSession.id.desc()).limit(limit).offset(offset)
    return list(session.scalars(query))


def update_session(
    session: Session, user: User, session_id: int, source_info: dict[str, Any]
) -> ReadingSession:
    """Merge ``source_info`` (top-level keys) into an open session of ``user``.

    Raises:
        NotFound: not visible to ``user``.
        Forbidden: not the session's reader.
        Conflict: the session is not open.
    """
    reading = _own_open_session(session, user, session_id)
    reading.source_info = {**reading.source_info, **source_info}
    session.flush()
    return reading


def finish_session(session: Session, user: User, session_id: int, body: SessionFinish) -> ReadingSession:
    """Close an open session of ``user`` with their diagnosis.

    Frames still arriving afterwards are refused (``session_closed``): the row lock taken here
    and by the gaze writer orders the two.

    Raises:
        NotFound: not visible to ``user``.
        Forbidden: not the session's reader.
        Conflict: the session is not open.
        Invalid: a label outside the dataset's label set.
    """
    reading = _own_open_session(session, user, session_id)
    check_label(session, reading, body.label)
    session.add(
        DiagnosisLabel(
            session_id=reading.id,
            case_id=reading.case_id,
            reader_id=reading.reader_id,
            label=body.label,
            confidence=body.confidence,
            finding_box=body.finding_box.model_dump() if body.finding_box else None,
        )
    )
    reading.status = SessionStatus.finished
    reading.finished_at = utcnow()
    apply_gate(session, reading, session_samples(session, reading.id))
    session.flush()
    logger.info(
        "session %s finished with %d samples in %d chunks",
        reading.id,
        reading.sample_count,
        reading.chunk_count,
    )
    return reading


def check_label(session: Session, reading: ReadingSession, label: str) -> None:
    """Raise ``Invalid`` unless ``label`` is in the label set of the session's dataset."""
    case = session.get(Case, reading.case_id)
    assert case is not None  # sessions are deleted with their case
    if label not in case.dataset.label_set:
        raise Invalid(f"label {label!r} is not in the label set {case.dataset.label_set}")


def override_quality(session: Session, admin: User, session_id: int, override: bool) -> ReadingSession:
    """Let a session flagged by the quality gate into pair mining (``override``) or keep it out.

    Raises:
        NotFound: no such session.
        Conflict: overriding a session the gate did not flag.
    """
    reading = visible_session(session, admin, session_id, lock=True)
    if reading.quality_flag is None and override:
        raise Conflict(f"session {session_id} is not flagged; nothing to override")
    reading.quality_override = override
    return reading


def labels_of(session: Session, session_ids: list[int]) -> dict[int, DiagnosisLabel]:
    if not session_ids:
        return {}
    rows = session.scalars(select(DiagnosisLabel).where(DiagnosisLabel.session_id.in_(session_ids)))
    return {row.session_id: row for row in rows if row.session_id is not None}


def session_public(
    reading: ReadingSession, label: DiagnosisLabel | None, reader_name: str = ""
) -> SessionPublic:
    return SessionPublic(
        id=reading.id,
        case_id=reading.case_id,
        reader_id=reading.reader_id,
        reader_name=reader_name,
        source=reading.source,
        source_info=reading.source_info,
        display_info=reading.display_info,
        status=reading.status,
        started_at=reading.started_at,
        finished_at=reading.finished_at,
        sample_count=reading.sample_count,
        chunk_count=reading.chunk_count,
        label=LabelPublic.model_validate(label) if label else None,
        quality_flag=reading.quality_flag,
        quality_override=reading.quality_override,
    )


def publics(session: Session, readings: list[ReadingSession]) -> list[SessionPublic]:
    labels = labels_of(session, [r.id for r in readings])
    names = reader_names(session, {r.reader_id for r in readings})
    return [session_public(r, labels.get(r.id), names.get(r.reader_id, "")) for r in readings]


def reader_names(session: Session, user_ids: set[int]) -> dict[int, str]:
    """Display name (else username) per user id."""
    if not user_ids:
        return {}
    rows = session.execute(select(User.id, User.display_name, User.username).where(User.id.in_(user_ids)))
    return {uid: display or username for uid, display, username in rows}


def session_samples(session: Session, session_id: int) -> FloatArray:
    """All stored samples of a session in seq order.

    Returns:
        ``(m, 18)`` float64 samples (columns in ``samples.COLUMNS``).
    """
    rows = session.execute(
        select(GazeChunk.n_samples, GazeChunk.encoding, GazeChunk.data)
        .where(GazeChunk.session_id == session_id)
        .order_by(GazeChunk.seq)
    )
    return codec.concat(codec.decode(data, n, encoding) for n, encoding, data in rows)


def stored_seqs(session: Session, session_id: int) -> list[int]:
    """The stored sequence numbers of a session, ascending."""
    query = select(GazeChunk.seq).where(GazeChunk.session_id == session_id).order_by(GazeChunk.seq)
    return [int(s) for s in session.scalars(query)]
