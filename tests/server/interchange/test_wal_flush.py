"""While a large import writes, SQLite's WAL file is synced to disk; other databases are left alone."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from server.db import Database
from server.interchange import wal_flush


def test_no_wal_to_sync_for_memory_sqlite_or_postgresql() -> None:
    for url in ("sqlite://", "sqlite:///:memory:", "postgresql+psycopg://u@localhost/mcgip"):
        with Session(create_engine(url)) as session:
            assert wal_flush.wal_path(session) is None, url
            with wal_flush.flushing_wal(session, interval_s=0.001):
                assert not any(t.name == "wal-flush" for t in threading.enumerate())


def test_the_wal_is_synced_while_a_transaction_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = Database(f"sqlite:///{tmp_path / 'f.db'}")
    synced: list[int] = []
    sync = wal_flush.sync_file

    def recording(path: Path) -> bool:
        done = sync(path)
        if done:
            synced.append(path.stat().st_size)
        return done

    monkeypatch.setattr(wal_flush, "sync_file", recording)
    with db.session() as session:
        assert wal_flush.wal_path(session) == tmp_path / "f.db-wal"
        session.execute(text("CREATE TABLE blobs (data BLOB)"))
        with wal_flush.flushing_wal(session, interval_s=0.005):
            # ~8 MB: more than SQLite's page cache, so pages spill into the WAL before the commit.
            for _ in range(32):
                session.execute(text("INSERT INTO blobs VALUES (:d)"), {"d": os.urandom(256 * 1024)})
            deadline = time.monotonic() + 5
            while not (synced and synced[-1] > 1024 * 1024) and time.monotonic() < deadline:
                time.sleep(0.01)
        after = len(synced)
        time.sleep(0.05)
        assert len(synced) == after, "the syncing thread stops with the block"
        assert not any(t.name == "wal-flush" for t in threading.enumerate())
    assert synced and synced[-1] > 1024 * 1024
    with db.session() as session:
        assert session.scalar(text("SELECT count(*) FROM blobs")) == 32
    db.dispose()
