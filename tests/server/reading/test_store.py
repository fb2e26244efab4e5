"""The chunk write path on both backends: concurrent writers, refusals, counters, encoding."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import numpy as np
import pytest
from sqlalchemy import func, select

from server.db import Database
from server.models import GazeChunk, ReadingSession, SessionStatus
from server.reading import samples as codec
from server.reading.service import session_samples
from server.reading.store import FrameIn, ResendsFound, store_frames
from tests.conftest import Users
from tests.server.reading.conftest import Reading, make_samples


def frames_for(session_id: int, reader_id: int, seqs: range, n: int = 4) -> list[FrameIn]:
    return [
        FrameIn(session_id, reader_id, seq, np.array(make_samples(n, t0=seq * 40.0, seed=seq)))
        for seq in seqs
    ]


def test_encoding_round_trips_exactly() -> None:
    data = np.array(make_samples(9, seed=5))
    blob = codec.encode(data)
    assert len(blob) == 9 * 18 * 8
    assert np.array_equal(codec.decode(blob, 9), data)
    with pytest.raises(ValueError, match="expected"):
        codec.decode(blob[:-8], 9)
    with pytest.raises(ValueError, match="encoding"):
        codec.decode(blob, 9, encoding=7)


def test_racing_writers_store_each_seq_once(reading: Reading, db: Database, users: Users) -> None:
    """Two writers (as two server processes would) commit overlapping frames at the same time."""
    sid = reading.open_session()["id"]
    frames = frames_for(sid, users.reader.id, range(40))
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []
    outcomes: list[list[bool]] = []

    def write(batch: list[FrameIn]) -> None:
        try:
            with db.engine.connect() as conn, conn.begin():
                barrier.wait(timeout=10)
                outcomes.append([r.ok for r in store_frames(conn, batch)])
        except BaseException as exc:  # collected and re-raised in the test thread
            errors.append(exc)

    threads = [
        threading.Thread(target=write, args=(frames[:30],)),
        threading.Thread(target=write, args=(list(reversed(frames[10:])),)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    assert all(all(ok) for ok in outcomes) and len(outcomes) == 2
    with db.session() as session:
        seqs = session.scalars(
            select(GazeChunk.seq).where(GazeChunk.session_id == sid).order_by(GazeChunk.seq)
        )
        assert list(seqs) == list(range(40))
        reading_row = session.get(ReadingSession, sid)
        assert reading_row is not None
        assert (reading_row.chunk_count, reading_row.sample_count) == (40, 160)
        stored = session_samples(session, sid)
        received = session.scalars(select(GazeChunk.received_at).where(GazeChunk.session_id == sid)).all()
    assert np.array_equal(stored, np.concatenate([f.samples for f in frames]))
    now = datetime.now(UTC).replace(tzinfo=None)
    assert all(abs((r.replace(tzinfo=None) - now).total_seconds()) < 120 for r in received)


def test_optimistic_store_refuses_resends_so_the_caller_can_retry(
    reading: Reading, db: Database, users: Users
) -> None:
    sid = reading.open_session()["id"]
    with db.session() as session:
        assert all(
            r.inserted
            for r in store_frames(session, frames_for(sid, users.reader.id, range(3)), optimistic=True)
        )
    with pytest.raises(ResendsFound), db.session() as session:
        store_frames(session, frames_for(sid, users.reader.id, range(2, 5)), optimistic=True)
    with db.session() as session:
        results = store_frames(session, frames_for(sid, users.reader.id, range(2, 5)))
        assert [r.inserted for r in results] == [False, True, True]
        row = session.get(ReadingSession, sid)
        assert row is not None and (row.chunk_count, row.sample_count) == (5, 20)


def test_refusals_leave_no_rows(reading: Reading, db: Database, users: Users) -> None:
    sid = reading.open_session()["id"]
    closed = reading.open_session()["id"]
    with db.session() as session:
        row = session.get(ReadingSession, closed)
        assert row is not None
        row.status = SessionStatus.finished
    batch = [
        *frames_for(sid, users.reader2.id, range(1)),  # someone else's session
        *frames_for(closed, users.reader.id, range(1)),  # finished
        *frames_for(424242, users.reader.id, range(1)),  # unknown
        *frames_for(sid, users.reader.id, range(2)),  # fine
        *frames_for(sid, users.reader.id, range(1, 2)),  # repeated within the batch
    ]
    with db.session() as session:
        results = store_frames(session, batch)
    assert [r.code for r in results] == ["forbidden", "session_closed", "unknown_session", None, None, None]
    assert [r.inserted for r in results] == [False, False, False, True, True, False]
    with db.session() as session:
        assert session.scalar(select(func.count(GazeChunk.id))) == 2
        counts = session.execute(
            select(ReadingSession.id, ReadingSession.chunk_count).order_by(ReadingSession.id)
        )
        assert {r[0]: r[1] for r in counts} == {sid: 2, closed: 0}


def test_a_batch_for_more_sessions_than_one_statement_holds(
    reading: Reading, db: Database, users: Users
) -> None:
    """Session ids are locked in statements of at most 512: a batch spanning 1,300 ids still sees all."""
    sids = [int(reading.open_session()["id"]) for _ in range(3)]
    with db.session() as session:
        row = session.get(ReadingSession, sids[1])
        assert row is not None
        row.status = SessionStatus.finished
    unknown = range(10_000, 11_297)  # sorted after the real ids: three statements
    batch = [*frames_for(sids[0], users.reader.id, range(1))]
    batch += [FrameIn(sid, users.reader.id, 0, batch[0].samples) for sid in (*unknown, sids[1], sids[2])]
    with db.engine.begin() as conn:
        results = store_frames(conn, batch)
    codes = [r.code for r in results]
    assert codes[0] is None and codes[-1] is None and codes[-2] == "session_closed"
    assert set(codes[1:-2]) == {"unknown_session"}
    with db.session() as session:
        assert session.scalar(select(func.count(GazeChunk.id))) == 2
