"""Simulated readers in the demo seed: finished, labelled sessions stored like streamed gaze."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import func, select

from server.db import Database
from server.demo.gaze import Viewport, protocol_samples, split_frames
from server.demo.seed import DEMO_READERS, seed_demo
from server.models import Case, DiagnosisLabel, GazeChunk, ReadingSession, SessionStatus, User
from server.reading.samples import COLUMN, FLAG_EYE, FLAG_ON_IMAGE, FLAG_VALID, FLAG_VISIBLE
from server.reading.service import session_samples
from server.settings import Settings


def test_protocol_samples_flag_blinks_and_off_image_gaze() -> None:
    sim = np.array(
        [
            [0.0, 10.5, 20.25, 1.0],  # on the image
            [8.0, np.nan, np.nan, 0.0],  # blink
            [16.0, 140.0, 20.0, 0.0],  # tracked, off the image
        ]
    )
    out = protocol_samples(sim, Viewport(width=100, height=50, window_center=2000.0, window_width=4000.0))
    assert out.shape == (3, 18) and np.isfinite(out).all()
    assert out[:, COLUMN["flags"]].tolist() == [
        15,
        FLAG_VISIBLE | FLAG_EYE,
        FLAG_VALID | FLAG_VISIBLE | FLAG_EYE,
    ]
    assert out[:, COLUMN["image_x"]].tolist() == [10.5, -1.0, 140.0]
    assert out[:, COLUMN["image_y"]].tolist() == [20.25, -1.0, 20.0]
    assert (out[:, COLUMN["screen_x"]] == out[:, COLUMN["image_x"]]).all()
    assert out[
        0, [COLUMN[c] for c in ("zoom", "pan_x", "pan_y", "img_width", "screen_h", "dpr")]
    ].tolist() == [1.0, 0.0, 0.0, 100.0, 50.0, 1.0]
    assert out[0, COLUMN["wl_center"]] == 2000.0 and FLAG_ON_IMAGE & 15


def test_split_frames_groups_by_time_and_keeps_every_sample() -> None:
    samples = np.zeros((25, 18))
    samples[:, 0] = np.arange(25) * 1000 / 60  # 60 Hz
    frames = split_frames(samples, 100.0)
    assert sum(len(f) for f in frames) == 25
    assert all(np.floor(f[:, 0] / 100).min() == np.floor(f[:, 0] / 100).max() for f in frames)
    assert np.array_equal(np.concatenate(frames), samples)


def test_demo_seed_gives_each_reader_labelled_sessions_idempotently(db: Database, settings: Settings) -> None:
    with db.session() as session:
        report = seed_demo(session, settings, n_cases=4, size=64)
    # Every other case is already read: each reader starts with half of the worklist unread.
    assert report.sessions_created == 2 * len(DEMO_READERS)
    with db.session() as session:
        readings = session.scalars(select(ReadingSession)).all()
        assert len(readings) == 4
        read_ids = {
            c.external_id
            for c in session.scalars(select(Case).where(Case.id.in_([r.case_id for r in readings])))
        }
        assert read_ids == {"synthetic-0000", "synthetic-0002"}
        assert {r.status for r in readings} == {SessionStatus.finished}
        assert {r.source for r in readings} == {"simulated"}
        names = {u.id: u.username for u in session.scalars(select(User))}
        assert {names[r.reader_id] for r in readings} == set(DEMO_READERS)
        cases = {c.id: c for c in session.scalars(select(Case)).unique()}
        for r in readings:
            samples = session_samples(session, r.id)
            assert samples.shape[0] == r.sample_count > 100
            n_chunks = session.scalar(select(func.count(GazeChunk.id)).where(GazeChunk.session_id == r.id))
            assert n_chunks == r.chunk_count > 10
            assert (np.diff(samples[:, COLUMN["t_ms"]]) >= 0).all()
            flags = samples[:, COLUMN["flags"]].astype(int)
            on_image = (flags & FLAG_ON_IMAGE) != 0
            assert on_image.mean() > 0.5 and np.isfinite(samples).all()
            image = cases[r.case_id].image
            assert image is not None
            xs, ys = samples[on_image, COLUMN["image_x"]], samples[on_image, COLUMN["image_y"]]
            assert xs.min() >= -0.5 and xs.max() <= image.width - 0.5
            assert ys.min() >= -0.5 and ys.max() <= image.height - 0.5
        labels = session.scalars(select(DiagnosisLabel)).all()
        assert len(labels) == 4
        assert all(label.label == cases[label.case_id].reference_label for label in labels)
        # Two readers read the same case differently.
        by_case: dict[int, list[int]] = {}
        for r in readings:
            by_case.setdefault(r.case_id, []).append(r.sample_count)
        assert all(len(set(counts)) == 2 for counts in by_case.values())
    with db.session() as session:
        again = seed_demo(session, settings, n_cases=4, size=64)
    assert (again.cases_created, again.sessions_created) == (0, 0)
    with db.session() as session:
        assert session.scalar(select(func.count(ReadingSession.id))) == 4


def test_demo_seed_again_generates_no_images(
    db: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    with db.session() as session:
        seed_demo(session, settings, n_cases=2, size=64)

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("a complete demo must not be generated again")

    monkeypatch.setattr("server.demo.seed.generate_dataset", refuse)
    with db.session() as session:
        again = seed_demo(session, settings, n_cases=2, size=64)
    assert (again.cases_created, again.sessions_created, again.cases_total) == (0, 0, 2)
