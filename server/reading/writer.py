"""Group-commit writer: one thread stores the frames of every socket in batched transactions.

SQLite allows one writer at a time and every commit costs a WAL sync, so committing frame by
frame from many sockets would serialize on the lock and the syncs. Instead, sockets put frames
on one queue; the writer thread takes everything waiting (up to ``max_batch``), stores it with
``store_frames`` in one transaction, commits, and only then hands each frame's result back to the
event loop that submitted it (one ``call_soon_threadsafe`` per loop per batch). A frame is
therefore acknowledged only after its commit, and the cost of a commit is shared by the batch.

The writer keeps its own connection; on SQLite it sets ``synchronous=FULL`` on it so that an
acknowledged frame survives power loss too, not only a process crash (WAL mode with the default
NORMAL may lose the last commits on power loss). SQLite normally checkpoints the WAL inside
whichever commit crosses the threshold, which stalls that commit (and every ack behind it) for
tens of milliseconds; the writer's connection turns that off and a side thread checkpoints
passively instead, which never blocks the writer.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from server.db import Database
from server.reading.store import FrameIn, FrameResult, ResendsFound, store_frames

logger = logging.getLogger(__name__)

Callback = Callable[[FrameResult], None]

#: Seconds between passive WAL checkpoints on SQLite.
CHECKPOINT_INTERVAL_S = 1.0

#: Result for frames that could not be stored because the database failed; the client resends.
UNAVAILABLE = FrameResult("unavailable", "the database did not accept the frame; resend it later")


class WriterOverloaded(Exception):
    """The queue is full; the frame was not taken."""


class _Pending(NamedTuple):
    frame: FrameIn
    loop: asyncio.AbstractEventLoop
    callback: Callback


@dataclass
class WriterStats:
    """Counters for monitoring and benchmarks."""

    batches: int = 0
    frames: int = 0
    inserted: int = 0
    failures: int = 0
    max_batch: int = 0
    resend_batches: int = 0


class GazeWriter:
    """The single writer thread of one server process.

    Args:
        db: The process's database.
        max_batch: Most frames committed in one transaction.
        max_queue: Most frames waiting; ``submit`` refuses more (sockets apply backpressure first).
    """

    def __init__(self, db: Database, *, max_batch: int = 2000, max_queue: int = 100_000) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self.db = db
        self.max_batch = max_batch
        self.max_queue = max_queue
        self.stats = WriterStats()
        # A SimpleQueue hands items over without a Python-level lock and condition: the event loop
        # submits thousands of frames a second and must not wait on the writer thread's lock.
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._conn: Connection | None = None
        self._checkpointer: threading.Thread | None = None
        self._stopping = threading.Event()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.running:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="gaze-writer", daemon=True)
        self._thread.start()
        if self.db.is_sqlite and CHECKPOINT_INTERVAL_S > 0:
            self._checkpointer = threading.Thread(
                target=self._checkpoint_loop, name="gaze-checkpoint", daemon=True
            )
            self._checkpointer.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Store everything already queued, then end the thread."""
        if self._thread is None:
            return
        self._queue.put(None)
        self._thread.join(timeout)
        if self._thread.is_alive():
            logger.error("gaze writer did not finish within %.0f s", timeout)
        self._thread = None
        self._stopping.set()
        if self._checkpointer is not None:
            self._checkpointer.join(timeout)
            self._checkpointer = None

    def submit(self, frame: FrameIn, loop: asyncio.AbstractEventLoop, callback: Callback) -> None:
        """Queue ``frame``; ``callback(result)`` later runs on ``loop`` after the commit.

        Raises:
            WriterOverloaded: the queue is full.
            RuntimeError: the writer is not running.
        """
        if not self.running:
            raise RuntimeError("gaze writer is not running")
        if self._queue.qsize() >= self.max_queue:
            raise WriterOverloaded("gaze writer queue is full")
        self._queue.put(_Pending(frame, loop, callback))

    # ---- writer thread ---------------------------------------------------------------------------

    def _connection(self) -> Connection:
        if self._conn is None or self._conn.closed or self._conn.invalidated:
            self._conn = self.db.engine.connect()
            if self.db.is_sqlite:
                self._conn.exec_driver_sql("PRAGMA synchronous=FULL")
                self._conn.exec_driver_sql("PRAGMA wal_autocheckpoint=0")
                self._conn.commit()
        return self._conn

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                break
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            self._deliver(batch, self._write(batch))
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _write(self, batch: list[_Pending]) -> list[FrameResult]:
        frames = [p.frame for p in batch]
        # Any failure (not only the database's): an exception must never end the writer thread,
        # which would leave every later frame unacknowledged.
        try:
            return self._commit(frames)
        except Exception:
            logger.exception("gaze batch of %d frames failed; retrying frame by frame", len(frames))
        # One bad frame (or a transient failure) must not cost the others: retry each on its own.
        results = []
        for frame in frames:
            try:
                results.extend(self._commit([frame]))
            except Exception:
                logger.exception("gaze frame %s/%s could not be stored", frame.session_id, frame.seq)
                self.stats.failures += 1
                results.append(UNAVAILABLE)
        return results

    def _commit(self, frames: list[FrameIn]) -> list[FrameResult]:
        conn = self._connection()
        try:
            try:
                with conn.begin():
                    results = store_frames(conn, frames, optimistic=True)
            except ResendsFound:
                # Rare (resends after a reconnect): the batch was rolled back; store it checking seqs.
                self.stats.resend_batches += 1
                with conn.begin():
                    results = store_frames(conn, frames)
        except DBAPIError as exc:
            if exc.connection_invalidated:
                self._conn = None
            raise
        self.stats.batches += 1
        self.stats.frames += len(frames)
        self.stats.inserted += sum(r.inserted for r in results)
        self.stats.max_batch = max(self.stats.max_batch, len(frames))
        return results

    def _checkpoint_loop(self) -> None:
        """Copy committed WAL pages into the database file now and then, without blocking writers."""
        while True:
            stopping = self._stopping.wait(CHECKPOINT_INTERVAL_S)
            try:
                with self.db.engine.connect() as conn:
                    conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
            except SQLAlchemyError:
                logger.exception("WAL checkpoint failed")
            if stopping:
                return

    @staticmethod
    def _deliver(batch: list[_Pending], results: list[FrameResult]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Callback, FrameResult]]] = {}
        for pending, result in zip(batch, results, strict=True):
            by_loop.setdefault(pending.loop, []).append((pending.callback, result))
        for loop, calls in by_loop.items():
            try:
                loop.call_soon_threadsafe(_run_callbacks, calls)
            except RuntimeError:
                # The loop is closed (server shutting down): nobody is left to acknowledge.
                logger.debug("dropping %d results for a closed event loop", len(calls))


def _run_callbacks(calls: list[tuple[Callback, FrameResult]]) -> None:
    for callback, result in calls:
        try:
            callback(result)
        except Exception:
            logger.exception("gaze result callback failed")
