"""Flushing SQLite's write-ahead log to disk while a large import is still writing.

A full-size EGD-CXR ``eye_gaze.csv`` adds ~220 MB of gaze chunks in one transaction. SQLite writes
them into the WAL file as its page cache spills, but the operating system keeps them in memory:
nothing reaches the disk until the commit's checkpoint syncs the WAL, copies it into the database
file and syncs that. Syncing the WAL every fraction of a second while the import is still parsing
and inserting lets the disk work in parallel with the CPU, so the checkpoint finds the WAL already
on disk. What is committed, and when, does not change: this only moves disk writes earlier.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.orm import Session

logger = logging.getLogger(__name__)

#: Seconds between two syncs of the WAL file.
INTERVAL_S = 0.25


def wal_path(session: Session) -> Path | None:
    """The WAL file of the session's SQLite database file (None: not a SQLite file)."""
    url = session.get_bind().engine.url
    database = url.database
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if "mode=memory" in str(url):
        return None
    return Path(database + "-wal")


def sync_file(path: Path) -> bool:
    """Write ``path``'s cached pages to disk; False when it cannot be opened (e.g. not there yet)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        os.fsync(fd)
    except OSError as exc:
        logger.debug("cannot sync %s: %s", path, exc)
        return False
    finally:
        os.close(fd)
    return True


@contextmanager
def flushing_wal(session: Session, interval_s: float = INTERVAL_S) -> Iterator[None]:
    """Sync the WAL of ``session``'s SQLite file every ``interval_s`` until the block ends.

    Does nothing for other databases (PostgreSQL writes its own WAL as it goes) or in-memory SQLite.
    """
    wal = wal_path(session)
    if wal is None:
        yield
        return
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(interval_s):
            sync_file(wal)

    thread = threading.Thread(target=run, name="wal-flush", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
