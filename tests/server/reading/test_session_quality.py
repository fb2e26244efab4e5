"""The session quality gate (dataset settings), the admin override, pair mining without flagged
sessions, and idle open sessions marked abandoned by the worker's schedule."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
from sqlalchemy import select

from server.datasets.settings import SessionQuality
from server.db import Database
from server.models import Dataset, GazeChunk, ReadingSession, SessionStatus, utcnow
from server.reading.quality import abandon_idle_sessions, gate, minable, valid_fraction
from server.reading.samples import COLUMN, FLAG_VALID, N_COLUMNS
from tests.server.reading.conftest import Reading, make_samples
from tests.server.reading.streaming import stream


def _samples(valid: int, invalid: int) -> np.ndarray:
    samples = np.zeros((valid + invalid, N_COLUMNS))
    samples[:valid, COLUMN["flags"]] = FLAG_VALID
    return samples


def test_gate_names_every_reason() -> None:
    quality = SessionQuality(min_valid_fraction=0.5, max_validation_error_deg=3.0)
    assert gate(quality, _samples(6, 4), {}) is None
    assert valid_fraction(_samples(1, 3)) == 0.25 and valid_fraction(_samples(0, 0)) is None
    calibrated = {"calibration": {"validation": {"mean_deg": 4.25, "mean_px": 180}}}
    reason = gate(quality, _samples(1, 3), calibrated)
    assert reason == "valid gaze 25% < minimum 50%; validation error 4.2° > maximum 3.0°"
    assert gate(quality, _samples(0, 0), {}) == "no gaze samples"
    # Missing or non-numeric validation never fails the error check.
    assert gate(quality, _samples(5, 0), {"calibration": {"validation": {"mean_deg": None}}}) is None


def test_finish_flags_invalid_gaze_and_admin_overrides(reading: Reading, db: Database) -> None:
    invalid = [[*row[:5], 0, *row[6:]] for row in make_samples(20)]  # flags 0: no valid point
    sid = reading.open_session()["id"]
    stream(reading, sid, {0: invalid})
    done = reading.client.post(
        f"/api/sessions/{sid}/finish", json={"label": "mass"}, headers=reading.auth("alice")
    )
    assert done.status_code == 200, done.text
    assert done.json()["quality_flag"] == "valid gaze 0% < minimum 20%"
    assert done.json()["quality_override"] is False
    with db.session() as session:
        assert session.scalars(select(ReadingSession.id).where(minable())).all() == []

    url = f"/api/sessions/{sid}/quality-override"
    assert reading.client.put(url, json={"override": True}, headers=reading.auth("alice")).status_code == 403
    assert reading.client.put(url, json={"override": "yes"}, headers=reading.auth("admin")).status_code == 422
    out = reading.client.put(url, json={"override": True}, headers=reading.auth("admin"))
    assert out.status_code == 200 and out.json()["quality_override"] is True
    with db.session() as session:
        assert session.scalars(select(ReadingSession.id).where(minable())).all() == [sid]

    # A good session passes; a dataset setting makes the gate stricter for later sessions.
    good = reading.open_session()["id"]
    stream(reading, good, {0: make_samples(20)})
    ok = reading.client.post(
        f"/api/sessions/{good}/finish", json={"label": "mass"}, headers=reading.auth("alice")
    )
    assert ok.json()["quality_flag"] is None
    with db.session() as session:
        dataset = session.get(Dataset, reading.dataset_id)
        assert dataset is not None
        dataset.settings = {**dataset.settings, "quality": {"min_valid_fraction": 1.0}}
    half = reading.open_session()["id"]
    later = [[*row[:5], 0, *row[6:]] for row in make_samples(10, t0=100.0)]
    stream(reading, half, {0: make_samples(10) + later})
    flagged = reading.client.post(
        f"/api/sessions/{half}/finish", json={"label": "mass"}, headers=reading.auth("alice")
    )
    assert flagged.json()["quality_flag"] == "valid gaze 50% < minimum 100%"


def test_idle_open_sessions_become_abandoned(reading: Reading, db: Database) -> None:
    idle = reading.open_session()["id"]
    streaming = reading.open_session()["id"]
    stream(reading, streaming, {0: make_samples(5)})
    now = utcnow()
    with db.session() as session:
        # Both opened 2 h ago; one received gaze 10 minutes ago.
        for row in session.scalars(select(ReadingSession)):
            row.started_at = now - timedelta(hours=2)
        for chunk in session.scalars(select(GazeChunk).where(GazeChunk.session_id == streaming)):
            chunk.received_at = now - timedelta(minutes=10)
    with db.session() as session:
        assert abandon_idle_sessions(session, now) == [idle]
    with db.session() as session:
        states = {r.id: r.status for r in session.scalars(select(ReadingSession))}
    assert states == {idle: SessionStatus.abandoned, streaming: SessionStatus.open}
    worklist = reading.client.get("/api/worklist", headers=reading.auth("alice")).json()
    assert next(i for i in worklist if i["case"]["id"] == reading.case_id)["status"] == "in_progress"
    with db.session() as session:
        assert abandon_idle_sessions(session, now + timedelta(minutes=51)) == [streaming]
    worklist = reading.client.get("/api/worklist", headers=reading.auth("alice")).json()
    assert next(i for i in worklist if i["case"]["id"] == reading.case_id)["status"] == "unread"
