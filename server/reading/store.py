"""Storing received frames as gaze chunks: the one write path for WebSocket, demo and imports.

``store_frames`` runs inside the caller's transaction and never commits; the caller commits and
only then acknowledges. Within that transaction the target sessions are locked first (row locks
on PostgreSQL, the database write lock on SQLite), so a session cannot be finished between the
"is it open?" check and the insert, and a chunk can never land in a finished session.

Duplicates are resolved by the database, not by a read-then-insert: ``INSERT ... ON CONFLICT
(session_id, seq) DO NOTHING RETURNING`` inserts a new seq and silently skips a stored one, even
when two writers (two server processes on one PostgreSQL) race on the same seq; the loser waits
for the winner's transaction and then skips, so no IntegrityError reaches the ingest path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from server.models import GazeChunk, ReadingSession, SessionStatus
from server.reading.samples import COLUMN, ENCODING_F64_ROWS, FloatArray, encode

Executor = Session | Connection

_SESSIONS = cast(Table, ReadingSession.__table__)
_CHUNKS = cast(Table, GazeChunk.__table__)


@dataclass(frozen=True)
class FrameIn:
    """One frame to store for ``reader_id`` (the authenticated writer)."""

    session_id: int
    reader_id: int
    seq: int
    samples: FloatArray  # (n, 18) float64, validated


@dataclass(frozen=True)
class FrameResult:
    """Outcome for one frame: ``code`` None means stored (``inserted``) or already stored."""

    code: str | None = None
    detail: str = ""
    inserted: bool = False

    @property
    def ok(self) -> bool:
        return self.code is None


DUPLICATE = FrameResult()
INSERTED = FrameResult(inserted=True)


def _dialect(executor: Executor) -> str:
    bind = executor.get_bind() if isinstance(executor, Session) else executor
    return bind.dialect.name


def lock_sessions(executor: Executor, session_ids: Sequence[int]) -> dict[int, tuple[SessionStatus, int]]:
    """Lock the given reading sessions for the rest of the transaction.

    Returns:
        session id -> (status, reader_id) for the sessions that exist.
    """
    table = _SESSIONS
    ids = sorted(set(session_ids))
    query = select(table.c.id, table.c.status, table.c.reader_id).where(table.c.id.in_(ids))
    if _dialect(executor) == "sqlite":
        # A write as the first statement takes SQLite's database write lock (waiting up to the busy
        # timeout) before anything is read, so the status read below cannot go stale.
        executor.execute(update(table).where(table.c.id.in_(ids)).values(chunk_count=table.c.chunk_count))
    else:
        # Row locks in id order, so concurrent writers never deadlock on each other.
        query = query.order_by(table.c.id).with_for_update()
    return {row.id: (SessionStatus(row.status), row.reader_id) for row in executor.execute(query)}


def _insert_statement(dialect: str) -> Any:
    table = _CHUNKS
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return (
        insert(table)
        .on_conflict_do_nothing(index_elements=["session_id", "seq"])
        .returning(table.c.session_id, table.c.seq)
    )


def _check(frame: FrameIn, sessions: dict[int, tuple[SessionStatus, int]]) -> FrameResult | None:
    found = sessions.get(frame.session_id)
    if found is None:
        return FrameResult("unknown_session", f"session {frame.session_id} does not exist")
    status, reader_id = found
    if reader_id != frame.reader_id:
        return FrameResult("forbidden", f"session {frame.session_id} belongs to another reader")
    if status != SessionStatus.open:
        return FrameResult("session_closed", f"session {frame.session_id} is {status.value}; no more frames")
    return None


def store_frames(executor: Executor, frames: Sequence[FrameIn]) -> list[FrameResult]:
    """Insert frames as chunks and update their sessions' counters, without committing.

    Args:
        executor: ORM session or Core connection inside an open transaction.
        frames: Validated frames, possibly for several sessions, possibly with duplicates.

    Returns:
        One result per frame, in order. A frame whose (session, seq) is already stored, or
        repeated within ``frames``, is a success without a new row.
    """
    if not frames:
        return []
    dialect = _dialect(executor)
    sessions = lock_sessions(executor, [f.session_id for f in frames])
    results: list[FrameResult | None] = [None] * len(frames)
    rows: list[dict[str, Any]] = []
    first_index: dict[tuple[int, int], int] = {}
    t_col = COLUMN["t_ms"]
    for i, frame in enumerate(frames):
        refused = _check(frame, sessions)
        if refused is not None:
            results[i] = refused
            continue
        key = (frame.session_id, frame.seq)
        if key in first_index:
            results[i] = DUPLICATE
            continue
        first_index[key] = i
        n = int(frame.samples.shape[0])
        rows.append(
            {
                "session_id": frame.session_id,
                "seq": frame.seq,
                "n_samples": n,
                "t_first_ms": float(frame.samples[0, t_col]),
                "t_last_ms": float(frame.samples[n - 1, t_col]),
                "encoding": ENCODING_F64_ROWS,
                "data": encode(frame.samples),
            }
        )
    inserted: set[tuple[int, int]] = set()
    if rows:
        result = executor.execute(_insert_statement(dialect), rows)
        inserted = {(int(r[0]), int(r[1])) for r in result}
    added: dict[int, list[int]] = {}
    for key, i in first_index.items():
        if key in inserted:
            results[i] = INSERTED
            counts = added.setdefault(key[0], [0, 0])
            counts[0] += int(frames[i].samples.shape[0])
            counts[1] += 1
        else:
            results[i] = DUPLICATE
    if added:
        table = _SESSIONS
        executor.execute(
            update(table)
            .where(table.c.id == bindparam("b_id"))
            .values(
                sample_count=table.c.sample_count + bindparam("b_samples"),
                chunk_count=table.c.chunk_count + bindparam("b_chunks"),
            ),
            [{"b_id": sid, "b_samples": s, "b_chunks": c} for sid, (s, c) in added.items()],
        )
    return [r if r is not None else DUPLICATE for r in results]
