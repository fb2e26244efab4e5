"""Session features and incremental pair mining as worker jobs, and the schedules that queue them."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select

from server.db import Database
from server.jobs import schedule
from server.jobs.kinds import LIGHT_KINDS, PairsSpec
from server.models import (
    GazeChunk,
    Job,
    JobState,
    MinedSession,
    Pair,
    ReadingSession,
    SessionFeatures,
    SessionStatus,
    utcnow,
)
from server.reading.samples import COLUMN, N_COLUMNS, encode
from server.settings import Settings
from server.storage import BlobStore
from server.worker.runner import Worker
from tests.conftest import Users
from tests.server.worker.data import TinyDataset, make_dataset


def _samples(seed: int, centre: tuple[float, float], spread: float) -> np.ndarray:
    """(m, 18) samples: 12 fixations of 200 ms at 100 Hz around ``centre`` (image px)."""
    rng = np.random.default_rng(seed)
    rows = []
    t = 0.0
    for _ in range(12):
        x, y = np.clip(rng.normal(centre, spread), 1, 46)
        for _ in range(20):
            row = np.zeros(N_COLUMNS)
            row[COLUMN["t_ms"]] = t
            row[COLUMN["image_x"]], row[COLUMN["image_y"]] = x + rng.normal(0, 0.05), y + rng.normal(0, 0.05)
            row[COLUMN["flags"]] = 1 | 2 | 4 | 8
            rows.append(row)
            t += 10.0
    return np.asarray(rows)


def add_session(db: Database, case_id: int, reader_id: int, seed: int, *, label_b: bool) -> int:
    centre = (30.0, 30.0) if label_b else (24.0, 24.0)
    samples = _samples(seed, centre, 1.0 if label_b else 14.0)
    with db.session() as session:
        reading = ReadingSession(
            case_id=case_id,
            reader_id=reader_id,
            source="simulated",
            status=SessionStatus.finished,
            finished_at=utcnow(),
            sample_count=len(samples),
            chunk_count=1,
        )
        session.add(reading)
        session.flush()
        session.add(
            GazeChunk(
                session_id=reading.id,
                seq=0,
                n_samples=len(samples),
                t_first_ms=0.0,
                t_last_ms=float(samples[-1, 0]),
                encoding=1,
                data=encode(samples),
            )
        )
        return reading.id


@pytest.fixture
def data(db: Database, settings: Settings, users: Users) -> TinyDataset:
    return make_dataset(db, BlobStore(settings.blob_dir), users.reader, n_cases=4)


def drain(worker: Worker, kinds: frozenset[str] = LIGHT_KINDS) -> list[int]:
    ran = []
    while (job_id := worker.run_once(kinds)) is not None:
        ran.append(job_id)
    return ran


def pairs(db: Database, dataset_id: int) -> dict[tuple[int, int], tuple[float, int, bool]]:
    with db.session() as session:
        rows = session.scalars(select(Pair).where(Pair.dataset_id == dataset_id))
        return {(p.case_a_id, p.case_b_id): (round(p.score, 9), p.n_readers, p.is_positive) for p in rows}


def test_finished_sessions_flow_into_features_and_pairs(
    db: Database, settings: Settings, data: TinyDataset, users: Users
) -> None:
    with db.session() as session:
        session.query(Pair).delete()  # start from an empty graph
    for i, case_id in enumerate(data.case_ids):
        for reader in (users.reader, users.reader2):
            add_session(db, case_id, reader.id, seed=10 * i + reader.id, label_b=bool(i % 2))
    schedule.tick(db)
    with db.session() as session:
        queued = session.scalars(select(Job).where(Job.state == JobState.queued)).all()
        assert [(j.kind, j.dataset_id) for j in queued] == [("session-features", data.dataset_id)]
    worker = Worker(settings, db=db)
    assert len(drain(worker)) == 2  # features, then the pairs job it queued
    with db.session() as session:
        assert len(session.scalars(select(SessionFeatures)).all()) == 8
        assert len(session.scalars(select(MinedSession)).all()) == 8
        assert all(j.state == JobState.succeeded for j in session.scalars(select(Job)))
    graph = pairs(db, data.dataset_id)
    assert len(graph) == 6 and all(n == 2 for _, n, _ in graph.values())  # both readers read every case
    a0, a1, a2, a3 = data.case_ids
    # Same-class cases (tight vs spread fixation patterns) are more alike than cross-class ones.
    assert graph[(a1, a3)][0] > graph[(a0, a1)][0] and graph[(a0, a2)][0] > graph[(a2, a3)][0]
    schedule.tick(db)  # nothing left to do
    with db.session() as session:
        assert session.scalars(select(Job).where(Job.state == JobState.queued)).all() == []


def test_incremental_mining_equals_full_recompute(
    db: Database, settings: Settings, data: TinyDataset, users: Users
) -> None:
    worker = Worker(settings, db=db)
    for i, case_id in enumerate(data.case_ids[:3]):
        add_session(db, case_id, users.reader.id, seed=i, label_b=bool(i % 2))
    schedule.tick(db)
    drain(worker)
    before = pairs(db, data.dataset_id)
    add_session(db, data.case_ids[3], users.reader.id, seed=99, label_b=True)
    schedule.tick(db)
    drain(worker)
    incremental = pairs(db, data.dataset_id)
    with db.session() as session:
        last = session.scalars(select(Job).where(Job.kind == "pairs").order_by(Job.id.desc())).first()
        assert last is not None and last.result["new_sessions"] == 1  # type: ignore[index]
        assert last.result["pairs_written"] == 3  # type: ignore[index]  # only pairs of the new case
    for key, value in before.items():
        assert incremental[key] == value
    from server.jobs import queue

    queue.submit(db, PairsSpec(full=True), dataset_id=data.dataset_id)
    drain(worker)
    assert pairs(db, data.dataset_id) == incremental


def test_flagging_a_mined_session_again_removes_its_pairs(
    db: Database, settings: Settings, data: TinyDataset, users: Users
) -> None:
    """An admin who takes an override back after mining: the session's pairs go, as if never mined."""
    with db.session() as session:
        session.query(Pair).delete()
    worker = Worker(settings, db=db)
    a0, a1, a2, a3 = data.case_ids
    kept = [
        add_session(db, c, users.reader.id, seed=i, label_b=bool(i % 2)) for i, c in enumerate((a0, a1, a2))
    ]
    schedule.tick(db)
    drain(worker)
    without = pairs(db, data.dataset_id)
    assert len(without) == 3
    # A flagged session let in by an override: mined, it adds the pairs of case a3.
    late = add_session(db, a3, users.reader.id, seed=7, label_b=True)
    with db.session() as session:
        reading = session.get(ReadingSession, late)
        assert reading is not None
        reading.quality_flag, reading.quality_override = "valid gaze 5% < minimum 20%", True
    schedule.tick(db)
    drain(worker)
    assert len(pairs(db, data.dataset_id)) == 6
    # The override taken back: the scheduler sees a mined session that may no longer be mined.
    with db.session() as session:
        reading = session.get(ReadingSession, late)
        assert reading is not None
        reading.quality_override = False
    schedule.tick(db)
    with db.session() as session:
        queued = session.scalars(select(Job).where(Job.state == JobState.queued)).all()
        assert [(j.kind, j.dataset_id) for j in queued] == [("pairs", data.dataset_id)]
    drain(worker)
    assert pairs(db, data.dataset_id) == without
    with db.session() as session:
        mined = set(session.scalars(select(MinedSession.session_id)))
        last = session.scalars(select(Job).where(Job.kind == "pairs").order_by(Job.id.desc())).first()
    assert mined == set(kept)
    assert last is not None and last.result["withdrawn_sessions"] == [late]  # type: ignore[index]
    schedule.tick(db)  # settled: nothing more to mine
    with db.session() as session:
        assert session.scalars(select(Job).where(Job.state == JobState.queued)).all() == []
