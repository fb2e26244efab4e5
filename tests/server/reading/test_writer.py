"""The group-commit gaze writer: results only after the commit, shared commits, failures contained."""

from __future__ import annotations

import asyncio
from functools import partial

import numpy as np
from sqlalchemy import func, select

from server.db import Database
from server.models import GazeChunk, ReadingSession
from server.reading.store import FrameIn, FrameResult
from server.reading.writer import GazeWriter
from tests.conftest import Users
from tests.server.reading.conftest import Reading, make_samples


def _stored(db: Database, session_id: int, seq: int | None = None) -> int:
    """Rows of the session (or of one seq) as a new connection sees them: committed ones only."""
    query = select(func.count()).select_from(GazeChunk).where(GazeChunk.session_id == session_id)
    if seq is not None:
        query = query.where(GazeChunk.seq == seq)
    with db.engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def _write_all(
    writer: GazeWriter, frames: list[FrameIn], on_result: partial[None] | None = None
) -> dict[int, FrameResult]:
    """Submit ``frames`` back to back from one event loop; returns seq -> result once all arrived."""
    results: dict[int, FrameResult] = {}

    async def main() -> None:
        loop = asyncio.get_running_loop()
        done = asyncio.Event()

        def record(seq: int, result: FrameResult) -> None:
            if on_result is not None:
                on_result(seq, result)
            results[seq] = result
            if len(results) == len(frames):
                done.set()

        for frame in frames:
            writer.submit(frame, loop, partial(record, frame.seq))
        await asyncio.wait_for(done.wait(), timeout=30)

    asyncio.run(main())
    return results


def _frames(session_id: int, reader_id: int, seqs: range) -> list[FrameIn]:
    return [
        FrameIn(session_id, reader_id, seq, np.array(make_samples(6, t0=seq * 50.0, seed=seq)))
        for seq in seqs
    ]


def test_results_arrive_after_the_commit_and_frames_waiting_together_share_it(
    reading: Reading, db: Database, users: Users
) -> None:
    sid = int(reading.open_session()["id"])
    visible_at_result: dict[int, int] = {}

    def check_committed(seq: int, result: FrameResult) -> None:
        # Runs when the socket would send the ack: the row must already be committed.
        visible_at_result[seq] = _stored(db, sid, seq)

    writer = GazeWriter(db)
    writer.start()
    try:
        results = _write_all(writer, _frames(sid, users.reader.id, range(60)), partial(check_committed))
    finally:
        writer.stop()
    assert all(r.ok and r.inserted for r in results.values())
    assert visible_at_result == dict.fromkeys(range(60), 1)
    # Submitted back to back, the frames waited for each other's commit and were stored in fewer.
    assert writer.stats.frames == 60
    assert writer.stats.batches < 60


def test_a_failing_frame_costs_only_itself_and_the_writer_keeps_going(
    reading: Reading, db: Database, users: Users
) -> None:
    sid = int(reading.open_session()["id"])
    frames = _frames(sid, users.reader.id, range(10))
    # A frame that cannot be encoded (17 columns) fails the whole batch's transaction.
    frames[5] = FrameIn(sid, users.reader.id, 5, np.zeros((3, 17)))
    writer = GazeWriter(db)
    writer.start()
    try:
        results = _write_all(writer, frames)
        assert writer.running
        after = _write_all(writer, _frames(sid, users.reader.id, range(5, 6)))
    finally:
        writer.stop()
    assert results[5].code == "unavailable"
    assert all(results[seq].ok for seq in range(10) if seq != 5)
    assert after[5].ok
    # Every acknowledged frame is stored once, and the counters agree with the rows.
    assert _stored(db, sid) == 10
    with db.session() as session:
        counters = session.get(ReadingSession, sid)
        assert counters is not None
        assert (counters.chunk_count, counters.sample_count) == (10, 60)
