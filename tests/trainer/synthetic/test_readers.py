"""Simulated readers: determinism, sampling, validity, eye-movement statistics, profile validation."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

from trainer.synthetic.images import CLASSES, SyntheticCase, generate_case, generate_dataset
from trainer.synthetic.readers import (
    DEMO_READERS,
    WEBCAM_READER,
    ReaderProfile,
    SimulatedSession,
    simulate_dataset_sessions,
    simulate_session,
)
from trainer.synthetic.scanpaths import MAX_FIXATION_MS, MIN_FIXATION_MS

READERS = (*DEMO_READERS, WEBCAM_READER)


@pytest.fixture(scope="module")
def cases() -> list[SyntheticCase]:
    return generate_dataset(24, seed=5)


@pytest.fixture(scope="module")
def sessions(cases: list[SyntheticCase]) -> dict[tuple[str, int], SimulatedSession]:
    return simulate_dataset_sessions(cases, READERS, seed=1)


def test_demo_readers_have_distinct_names_and_habits() -> None:
    names = [r.name for r in DEMO_READERS]
    assert names[:2] == ["reader1", "reader2"] and len(set(names)) == len(names)
    a, b = DEMO_READERS[0], DEMO_READERS[1]
    assert a.search_pattern != b.search_pattern
    assert a.fixation_ms_mean != b.fixation_ms_mean and a.sample_rate_hz != b.sample_rate_hz


def test_session_is_deterministic_given_its_seed() -> None:
    case = generate_case(2, "calcifications")
    a = simulate_session(case, DEMO_READERS[0], seed=4)
    b = simulate_session(case, DEMO_READERS[0], seed=4)
    np.testing.assert_array_equal(a.samples, b.samples)
    np.testing.assert_array_equal(a.fixations, b.fixations)
    c = simulate_session(case, DEMO_READERS[0], seed=5)
    assert c.samples.shape != a.samples.shape or not np.array_equal(c.samples, a.samples, equal_nan=True)
    d = simulate_session(case, DEMO_READERS[1], seed=4)
    assert d.samples.shape != a.samples.shape or not np.array_equal(d.samples, a.samples, equal_nan=True)


def test_dataset_sessions_cover_every_reader_and_case_deterministically(
    cases: list[SyntheticCase], sessions: dict[tuple[str, int], SimulatedSession]
) -> None:
    assert list(sessions) == [(r.name, i) for r in READERS for i in range(len(cases))]
    again = simulate_dataset_sessions(cases[:3], DEMO_READERS, seed=1)
    for key, session in again.items():
        np.testing.assert_array_equal(session.samples, sessions[key].samples)
    with pytest.raises(ValueError, match="distinct"):
        simulate_dataset_sessions(cases[:1], (DEMO_READERS[0], DEMO_READERS[0]))


def test_shapes_dtypes_and_validity(
    cases: list[SyntheticCase], sessions: dict[tuple[str, int], SimulatedSession]
) -> None:
    invalid_total = 0
    for (_, i), s in sessions.items():
        h, w = cases[i].image.shape
        assert s.fixations.dtype == np.float64 and s.fixations.ndim == 2 and s.fixations.shape[1] == 3
        assert s.samples.dtype == np.float64 and s.samples.ndim == 2 and s.samples.shape[1] == 4
        assert len(s.fixations) >= 5 and len(s.samples) > 100
        valid = s.samples[:, 3]
        assert set(np.unique(valid)) <= {0.0, 1.0}
        on = s.samples[valid == 1]
        assert np.isfinite(on[:, 1:3]).all()
        assert (on[:, 1] >= -0.5).all() and (on[:, 1] <= w - 0.5).all()
        assert (on[:, 2] >= -0.5).all() and (on[:, 2] <= h - 0.5).all()
        # Untracked samples are NaN; every NaN sample is flagged invalid.
        assert (valid[np.isnan(s.samples[:, 1])] == 0).all()
        assert 0.6 < valid.mean() <= 1.0
        # True fixations lie on the image.
        assert (s.fixations[:, 0] >= -0.5).all() and (s.fixations[:, 0] <= w - 0.5).all()
        invalid_total += int((valid == 0).sum())
    assert invalid_total > 0


def test_blinks_and_off_image_glances_are_flagged_not_dropped() -> None:
    case = generate_case(9, "normal")
    reader = dataclasses.replace(DEMO_READERS[0], blink_rate_hz=1.0, offimage_rate_hz=0.5, dropout_rate=0.0)
    samples = simulate_session(case, reader, seed=0, duration_s=20.0).samples
    invalid = samples[samples[:, 3] == 0]
    blinks = np.isnan(invalid[:, 1])
    off_image = invalid[~blinks]
    assert blinks.sum() > 10 and len(off_image) > 10
    assert (off_image[:, 1] > case.image.shape[1] - 0.5).any()
    # Blinks last about 100-250 ms: runs of NaN samples at 60 Hz are 6-15 samples long.
    runs = np.diff(np.flatnonzero(np.diff(np.concatenate([[0], np.isnan(samples[:, 1]), [0]]))))[::2]
    assert runs.max() <= 16 and np.median(runs) >= 5


@pytest.mark.parametrize("reader", READERS, ids=lambda r: r.name)
def test_timestamps_are_monotonic_at_the_configured_rate(reader: ReaderProfile) -> None:
    case = generate_case(1, "round_mass")
    samples = simulate_session(case, reader, seed=2, duration_s=6.0).samples
    t = samples[:, 0]
    period = 1000.0 / reader.sample_rate_hz
    assert t[0] == 0.0 and (np.diff(t) > 0).all()
    assert np.median(np.diff(t)) == pytest.approx(period, rel=0.05)
    assert len(t) == int(np.ceil(6000.0 / period)) and t[-1] < 6000.0


def test_fixation_durations_are_plausible(sessions: dict[tuple[str, int], SimulatedSession]) -> None:
    for reader in READERS:
        durations_ms = np.concatenate(
            [s.fixations[:, 2] for (name, _), s in sessions.items() if name == reader.name]
        )
        durations_ms = durations_ms * 1000.0
        assert durations_ms.min() >= MIN_FIXATION_MS - 1e-9 and durations_ms.max() <= MAX_FIXATION_MS + 1e-9
        assert 180.0 < np.median(durations_ms) < 400.0
        assert durations_ms.std() > 40.0  # durations vary, not a constant
    means = {
        r.name: np.mean([s.fixations[:, 2].mean() for (n, _), s in sessions.items() if n == r.name])
        for r in DEMO_READERS
    }
    # reader1 has the longer fixation habit.
    assert means["reader1"] > means["reader2"]


def test_saccades_follow_the_main_sequence() -> None:
    # A noise-free 1 kHz tracker shows the eye's own movement: saccades are 20-80 ms long and their
    # peak velocity grows with amplitude.
    reader = ReaderProfile(
        name="ideal",
        seed=5,
        sample_rate_hz=1000.0,
        noise_px=0.0,
        drift_px=0.0,
        offset_px=0.0,
        dropout_rate=0.0,
        blink_rate_hz=0.0,
        offimage_rate_hz=0.0,
    )
    amplitudes, peaks, durations = [], [], []
    for seed in range(4):
        samples = simulate_session(generate_case(seed, CLASSES[seed]), reader, seed=seed).samples
        xy = samples[:, 1:3]
        speed = np.hypot(*np.diff(xy, axis=0).T)  # px per ms
        moving = np.concatenate([[False], speed > 1e-6, [False]])
        edges = np.flatnonzero(np.diff(moving.astype(int)))
        for start, stop in zip(edges[::2], edges[1::2], strict=True):
            amplitudes.append(np.hypot(*(xy[stop] - xy[start])))
            peaks.append(speed[start:stop].max())
            durations.append(stop - start)
    durations_ms = np.asarray(durations)
    assert len(durations_ms) > 50
    assert durations_ms.min() >= 18 and durations_ms.max() <= 82
    assert np.corrcoef(amplitudes, peaks)[0, 1] > 0.8
    assert np.corrcoef(amplitudes, durations_ms)[0, 1] > 0.5


def _in_bbox_time(session: SimulatedSession, bbox: tuple[float, float, float, float], pad: float) -> float:
    x0, y0, x1, y1 = bbox
    f = session.fixations
    inside = (f[:, 0] >= x0 - pad) & (f[:, 0] <= x1 + pad) & (f[:, 1] >= y0 - pad) & (f[:, 1] <= y1 + pad)
    return float(f[inside, 2].sum() / f[:, 2].sum())


def test_gaze_dwells_on_findings(
    cases: list[SyntheticCase], sessions: dict[tuple[str, int], SimulatedSession]
) -> None:
    fractions, chance = [], []
    for (_, i), s in sessions.items():
        case = cases[i]
        if not case.findings:
            continue
        bbox = case.findings[0].bbox
        fractions.append(_in_bbox_time(s, bbox, pad=2.0))
        h, w = case.image.shape
        chance.append((bbox[2] - bbox[0] + 4) * (bbox[3] - bbox[1] + 4) / (h * w))
    assert np.mean(fractions) > 0.4
    assert np.mean(fractions) > 8 * np.mean(chance)
    assert np.median(fractions) > 0.3


def test_dwell_is_class_typical(
    cases: list[SyntheticCase], sessions: dict[tuple[str, int], SimulatedSession]
) -> None:
    # Within the finding: long central fixations on round masses, a ring round spiculated masses,
    # short hops over calcifications.
    stats: dict[str, list[tuple[float, float]]] = {k: [] for k in CLASSES[1:]}
    for (_, i), s in sessions.items():
        if not cases[i].findings:
            continue
        f = cases[i].findings[0]
        d = np.hypot(s.fixations[:, 0] - f.cx, s.fixations[:, 1] - f.cy) / f.radius
        on = d < 1.1
        if on.sum() >= 2:
            stats[f.kind].append((float(np.median(d[on])), float(np.median(s.fixations[on, 2]))))
    dist = {k: np.median([v[0] for v in vals]) for k, vals in stats.items()}
    dur = {k: np.median([v[1] for v in vals]) for k, vals in stats.items()}
    assert dist["round_mass"] < dist["spiculated_mass"]
    assert dur["calcifications"] < dur["spiculated_mass"] < dur["round_mass"]


def _heatmap(fixations: np.ndarray, size: int, bins: int = 32) -> np.ndarray:
    """Duration-weighted 32x32 fixation histogram, lightly smoothed (separable 1-2-1 kernel)."""
    h, _, _ = np.histogram2d(
        fixations[:, 1], fixations[:, 0], bins=bins, range=[[0, size], [0, size]], weights=fixations[:, 2]
    )
    k = np.array([0.25, 0.5, 0.25])
    h = np.apply_along_axis(lambda r: np.convolve(r, k, mode="same"), 0, h)
    return np.apply_along_axis(lambda r: np.convolve(r, k, mode="same"), 1, h)


def test_same_class_scanpaths_are_more_similar(
    cases: list[SyntheticCase], sessions: dict[tuple[str, int], SimulatedSession]
) -> None:
    # Location-free scanpath statistics (fixation duration, share of short saccades, fixation
    # count, as MultiMatch's duration and length dimensions see them): sessions on cases of one
    # class lie closer together than sessions on cases of different classes.
    labels = np.array([c.label for c in cases])
    for reader in READERS:
        feats = []
        for i in range(len(cases)):
            f = sessions[(reader.name, i)].fixations
            amplitude = np.hypot(*np.diff(f[:, :2], axis=0).T) / cases[i].image.shape[1]
            feats.append([np.log(np.median(f[:, 2])), np.mean(amplitude < 0.1), np.log(len(f))])
        z = np.asarray(feats)
        z = (z - z.mean(axis=0)) / z.std(axis=0)
        dist = np.linalg.norm(z[:, None] - z[None, :], axis=2)
        for label in CLASSES:
            rows = labels == label
            within = dist[np.ix_(rows, rows)][~np.eye(rows.sum(), dtype=bool)].mean()
            between = dist[np.ix_(rows, ~rows)].mean()
            assert within < 0.75 * between, (reader.name, label)


def test_same_case_heatmaps_agree_across_readers(
    cases: list[SyntheticCase], sessions: dict[tuple[str, int], SimulatedSession]
) -> None:
    # Gaze follows the finding's location: two readers on one case agree far more than on two cases.
    n = len(cases)
    a = np.array([_heatmap(sessions[("reader1", i)].fixations, 256).ravel() for i in range(n)])
    b = np.array([_heatmap(sessions[("reader2", i)].fixations, 256).ravel() for i in range(n)])
    cross = np.corrcoef(a, b)[:n, n:]
    assert np.diag(cross).mean() > 0.4
    assert np.diag(cross).mean() > cross[~np.eye(n, dtype=bool)].mean() + 0.3


def test_moment_similarity_separates_classes(
    cases: list[SyntheticCase], sessions: dict[tuple[str, int], SimulatedSession]
) -> None:
    # Location-free similarity from total dwell (M00) and spread (I1) of the heatmap, as in McGIP:
    # sim = 1 - (d(I1) + d(M00)) / 2 with d(x, y) = |x - y| / max(x, y).
    labels = np.array([c.label for c in cases])
    yy, xx = np.mgrid[0:32, 0:32]
    for reader in READERS:
        feats = []
        for i in range(len(cases)):
            h = _heatmap(sessions[(reader.name, i)].fixations, 256)
            m00 = h.sum()
            mx, my = (h * xx).sum() / m00, (h * yy).sum() / m00
            feats.append((m00, (h * ((xx - mx) ** 2 + (yy - my) ** 2)).sum() / m00**2))
        f = np.array(feats)
        d = np.abs(f[:, None, :] - f[None, :, :]) / np.maximum(f[:, None, :], f[None, :, :])
        sim = 1.0 - d.mean(axis=2)
        for label in CLASSES:
            rows = labels == label
            within = sim[np.ix_(rows, rows)][~np.eye(rows.sum(), dtype=bool)].mean()
            between = sim[np.ix_(rows, ~rows)].mean()
            assert within > between, (reader.name, label)


def test_fixed_duration_sessions_end_on_time() -> None:
    case = generate_case(4, "spiculated_mass")
    for duration in (2.0, 30.0):
        s = simulate_session(case, DEMO_READERS[1], seed=0, duration_s=duration)
        assert s.samples[-1, 0] < duration * 1000.0
        assert s.samples[-1, 0] >= duration * 1000.0 - 1000.0 / DEMO_READERS[1].sample_rate_hz
        assert s.fixations[:, 2].sum() <= duration
    with pytest.raises(ValueError, match="duration_s"):
        simulate_session(case, DEMO_READERS[0], seed=0, duration_s=0.0)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("sample_rate_hz", 0.0),
        ("noise_px", -1.0),
        ("free_search_fraction", 1.0),
        ("search_pattern", "zigzag"),
    ],
)
def test_bad_profiles_are_rejected(field: str, value: Any) -> None:
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(DEMO_READERS[0], **{field: value})
