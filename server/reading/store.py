"""Storing received frames as gaze chunks: the one write path for WebSocket, demo and imports.

``store_frames`` runs inside the caller's transaction and never commits; the caller commits and
only then acknowledges. Within that transaction the target sessions are locked first (row locks
on PostgreSQL, the database write lock on SQLite), so a session cannot be finished between the
"is it open?" check and the insert, and a chunk can never land in a finished session.

Duplicates (a resend, or the same seq twice in a batch) are harmless. Every writer locks the
target sessions before touching their chunks, so the stored seqs read under that lock are exact
until commit: known seqs are skipped and new ones inserted without a unique-key violation, even
with two writers (two server processes on one PostgreSQL) racing on the same seq; the second waits
for the first's commit and then sees its rows. The insert still says ``ON CONFLICT (session_id,
seq) DO NOTHING``, so the unique constraint stays the final guarantee and never surfaces as an
IntegrityError.

Looking stored seqs up costs more than the insert itself, and at ingest nearly every frame is new.
With ``optimistic=True`` the lookup is skipped: the insert's row count must then equal the number
of frames, and ``ResendsFound`` is raised otherwise, telling the caller to roll back and call again
with ``optimistic=False``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, NamedTuple, cast

from sqlalchemy import BigInteger, Connection, Dialect, Integer, Table, bindparam, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from server.models import GazeChunk, ReadingSession, SessionStatus, utcnow
from server.reading.samples import COLUMN, ENCODING_F64_ROWS, encode
from trainer.arrays import FloatArray

Executor = Session | Connection

_SESSIONS = cast(Table, ReadingSession.__table__)
_CHUNKS = cast(Table, GazeChunk.__table__)
#: Session ids per locking statement (bound parameters stay far below every backend's limit).
_IDS_PER_STATEMENT = 512
#: Keys per lookup of stored seqs (two bound parameters each; well under every backend's limit).
_KEYS_PER_QUERY = 400


class FrameIn(NamedTuple):
    """One frame to store for ``reader_id`` (the authenticated writer; a named tuple, built per frame)."""

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


class ResendsFound(Exception):
    """An optimistic insert met stored seqs; roll back and store again with ``optimistic=False``."""


DUPLICATE = FrameResult()
INSERTED = FrameResult(inserted=True)


def lock_sessions(executor: Executor, session_ids: Sequence[int]) -> dict[int, tuple[SessionStatus, int]]:
    """Lock the given reading sessions for the rest of the transaction.

    Returns:
        session id -> (status, reader_id) for the sessions that exist.
    """
    conn = _connection(executor)
    ids = sorted(set(session_ids))
    found: dict[int, tuple[SessionStatus, int]] = {}
    for start in range(0, len(ids), _IDS_PER_STATEMENT):
        part = ids[start : start + _IDS_PER_STATEMENT]
        # Padded to a power of two by repeating the last id, so few distinct statements are rendered.
        width = 1 << (len(part) - 1).bit_length()
        values = {f"id_{i}": sid for i, sid in enumerate(part + [part[-1]] * (width - len(part)))}
        if conn.dialect.name == "sqlite":
            # A write as the first statement takes SQLite's database write lock (waiting up to the
            # busy timeout) before anything is read, so the status read below cannot go stale.
            touch = _rendered(conn.dialect, "touch", width)
            conn.exec_driver_sql(touch.sql, touch.params(values))
        # On PostgreSQL: row locks in id order, so concurrent writers never deadlock on each other.
        query = _rendered(conn.dialect, "lock", width)
        for sid, status, reader_id in conn.exec_driver_sql(query.sql, query.params(values)):
            # The status column stores the member's name (a non-native Enum).
            found[int(sid)] = (SessionStatus[status], int(reader_id))
    return found


def _connection(executor: Executor) -> Connection:
    """The Core connection of ``executor``'s transaction (an ORM session is flushed first)."""
    if isinstance(executor, Session):
        executor.flush()
        return executor.connection()
    return executor


@dataclass(frozen=True)
class _Rendered:
    """A statement rendered once for a dialect, run with plain driver parameters.

    Ingest runs these a few hundred times a second; SQLAlchemy's per-execution compilation cache
    lookup and parameter processing would cost more than the database work.
    """

    sql: str
    #: Parameter names in positional order, or None when the driver takes named parameters.
    order: tuple[str, ...] | None

    def params(self, values: Mapping[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        if self.order is None:
            return dict(values)
        return tuple(values[name] for name in self.order)


@lru_cache(maxsize=64)
def _rendered(dialect: Dialect, kind: str, width: int = 0) -> _Rendered:
    """The statement ``kind`` for ``dialect``.

    ``touch`` and ``lock`` take ``width`` session ids ``id_0``...; ``counters`` adds ``b_samples`` and
    ``b_chunks`` to the counters of session ``b_id``.
    """
    table = _SESSIONS
    ids = [bindparam(f"id_{i}", type_=Integer) for i in range(width)]
    stmt: Any
    if kind == "touch":
        stmt = update(table).where(table.c.id.in_(ids)).values(chunk_count=table.c.chunk_count)
    elif kind == "lock":
        stmt = select(table.c.id, table.c.status, table.c.reader_id).where(table.c.id.in_(ids))
        if dialect.name != "sqlite":
            stmt = stmt.order_by(table.c.id).with_for_update()
    elif kind == "counters":
        stmt = (
            update(table)
            .where(table.c.id == bindparam("b_id", type_=Integer))
            .values(
                sample_count=table.c.sample_count + bindparam("b_samples", type_=BigInteger),
                chunk_count=table.c.chunk_count + bindparam("b_chunks", type_=Integer),
            )
        )
    else:
        raise ValueError(f"unknown statement {kind!r}")
    compiled = stmt.compile(dialect=dialect)
    order = tuple(compiled.positiontup or ()) if compiled.positional else None
    return _Rendered(sql=compiled.string, order=order)


_INSERT_COLUMNS = (
    "session_id",
    "seq",
    "n_samples",
    "t_first_ms",
    "t_last_ms",
    "encoding",
    "data",
    "received_at",
)


@dataclass(frozen=True)
class _CompiledInsert:
    sql: str
    positional: bool
    received_at: Callable[[datetime], Any]


@lru_cache(maxsize=4)
def _compiled_insert(dialect: Dialect) -> _CompiledInsert:
    """The chunk INSERT rendered once for ``dialect``.

    Ingest inserts thousands of rows a second; executing pre-rendered SQL with plain parameter
    tuples skips SQLAlchemy's per-row parameter processing, which otherwise costs more than the
    database work.
    """
    insert = postgresql.insert if dialect.name == "postgresql" else sqlite.insert
    stmt = insert(_CHUNKS).values({c: bindparam(c) for c in _INSERT_COLUMNS})
    compiled = stmt.on_conflict_do_nothing(index_elements=["session_id", "seq"]).compile(dialect=dialect)
    positional = bool(compiled.positional)
    if positional and tuple(compiled.positiontup or ()) != _INSERT_COLUMNS:
        raise RuntimeError(f"unexpected parameter order {compiled.positiontup}")
    process = _CHUNKS.c.received_at.type.bind_processor(dialect) or (lambda value: value)
    if dialect.name == "sqlite":
        base = process

        def process(value: Any) -> Any:
            # The text sqlite3's default datetime adapter would store, made once per batch rather
            # than by the driver for every row (it showed up in ingest profiles).
            value = base(value)
            return value.isoformat(" ") if isinstance(value, datetime) else value

    return _CompiledInsert(sql=compiled.string, positional=positional, received_at=process)


def _insert_rows(conn: Connection, rows: list[tuple[Any, ...]]) -> int:
    """Insert chunk rows (``_INSERT_COLUMNS`` order, without received_at); returns rows inserted."""
    compiled = _compiled_insert(conn.dialect)
    received = compiled.received_at(utcnow())
    params: list[Any]
    if compiled.positional:
        params = [(*row, received) for row in rows]
    else:
        params = [dict(zip(_INSERT_COLUMNS, (*row, received), strict=True)) for row in rows]
    return int(conn.exec_driver_sql(compiled.sql, params).rowcount)


def _stored_keys(executor: Connection, keys: set[tuple[int, int]]) -> set[tuple[int, int]]:
    """Which (session_id, seq) pairs of ``keys`` are already stored."""
    found: set[tuple[int, int]] = set()
    ordered = sorted(keys)
    for start in range(0, len(ordered), _KEYS_PER_QUERY):
        part = ordered[start : start + _KEYS_PER_QUERY]
        query = select(_CHUNKS.c.session_id, _CHUNKS.c.seq).where(
            tuple_(_CHUNKS.c.session_id, _CHUNKS.c.seq).in_(part)
        )
        found.update((int(sid), int(seq)) for sid, seq in executor.execute(query))
    return found


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


def store_frames(
    executor: Executor, frames: Sequence[FrameIn], *, optimistic: bool = False
) -> list[FrameResult]:
    """Insert frames as chunks and update their sessions' counters, without committing.

    Args:
        executor: ORM session or Core connection inside an open transaction.
        frames: Validated frames, possibly for several sessions, possibly with duplicates.
        optimistic: Assume no frame is stored yet (see the module notes).

    Returns:
        One result per frame, in order. A frame whose (session, seq) is already stored, or
        repeated within ``frames``, is a success without a new row.

    Raises:
        ResendsFound: only when ``optimistic``; the transaction then holds a partial insert.
    """
    if not frames:
        return []
    conn = _connection(executor)
    sessions = lock_sessions(conn, [f.session_id for f in frames])
    results: list[FrameResult | None] = [None] * len(frames)
    rows: list[tuple[Any, ...]] = []
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
        t_first, t_last = float(frame.samples[0, t_col]), float(frame.samples[n - 1, t_col])
        rows.append(
            (frame.session_id, frame.seq, n, t_first, t_last, ENCODING_F64_ROWS, encode(frame.samples))
        )
    optimistic = optimistic and bool(conn.dialect.supports_sane_multi_rowcount)
    if not optimistic and rows:
        # Sessions are locked, so what is stored now stays exactly what is stored until commit.
        stored = _stored_keys(conn, set(first_index))
        rows = [row for row in rows if (row[0], row[1]) not in stored]
    inserted = {(row[0], row[1]) for row in rows}
    if rows:
        count = _insert_rows(conn, rows)
        if optimistic and count != len(rows):
            raise ResendsFound(f"{len(rows) - count} of {len(rows)} frames were already stored")
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
        counters = _rendered(conn.dialect, "counters")
        params = [
            counters.params({"b_id": sid, "b_samples": n_samples, "b_chunks": n_chunks})
            for sid, (n_samples, n_chunks) in sorted(added.items())
        ]
        conn.exec_driver_sql(counters.sql, params)
    return [r if r is not None else DUPLICATE for r in results]
