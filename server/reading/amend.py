"""Amending a submitted diagnosis: the label stays one row per session, earlier versions go to its history."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.exceptions import Conflict, Forbidden
from server.models import DiagnosisLabel, ReadingSession, SessionStatus, User
from server.models.base import utcnow
from server.reading.schemas import SessionFinish
from server.reading.service import check_label, visible_session


def amend_label(session: Session, user: User, session_id: int, body: SessionFinish) -> ReadingSession:
    """Replace the diagnosis of a finished session of ``user``, keeping the previous one in ``history``
    (oldest first: label, confidence, finding_box, given_at, replaced_at).

    Raises:
        NotFound: not visible to ``user``.
        Forbidden: not the session's reader.
        Conflict: the session is not finished, or has no label yet.
        Invalid: a label outside the dataset's label set.
    """
    reading = visible_session(session, user, session_id, lock=True)
    if reading.reader_id != user.id:
        raise Forbidden("only the session's reader can amend its diagnosis")
    if reading.status != SessionStatus.finished:
        raise Conflict(f"session {session_id} is {reading.status.value}; finish it first")
    label = session.scalar(select(DiagnosisLabel).where(DiagnosisLabel.session_id == reading.id))
    if label is None:
        raise Conflict(f"session {session_id} has no diagnosis to amend")
    check_label(session, reading, body.label)
    history = list(label.history or [])
    # When the version being replaced was given: the first at finishing, later ones at their amendment.
    given_at = history[-1]["replaced_at"] if history else label.created_at.isoformat()
    history.append(
        {
            "label": label.label,
            "confidence": label.confidence,
            "finding_box": label.finding_box,
            "given_at": given_at,
            "replaced_at": utcnow().isoformat(),
        }
    )
    # A new list (not an in-place append): the JSON column only notices assignment.
    label.history = history
    label.label = body.label
    label.confidence = body.confidence
    label.finding_box = body.finding_box.model_dump() if body.finding_box else None
    session.flush()
    return reading
