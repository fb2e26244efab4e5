"""Fixation detection on synthetic gaze with known fixations, at webcam and tracker rates."""

from __future__ import annotations

import numpy as np
import pytest

from trainer.gaze.fixations import detect_fixations

PPD = 35.0  # pixels per degree of the synthetic set-up
TRUE = [
    (100.0, 100.0, 300.0),
    (420.0, 120.0, 250.0),
    (380.0, 400.0, 400.0),
    (120.0, 380.0, 220.0),
    (260.0, 250.0, 350.0),
]
SACCADE_MS = 45.0


def _signal(
    rate: float, noise_px: float, seed: int = 0, blink: tuple[float, float] | None = None
) -> np.ndarray:
    """Samples (m, 4) of fixations ``TRUE`` joined by linear saccades, with white noise."""
    rng = np.random.default_rng(seed)
    knots_t, knots_x, knots_y = [], [], []
    t = 0.0
    for k, (x, y, d) in enumerate(TRUE):
        if k:
            t += SACCADE_MS
        knots_t += [t, t + d]
        knots_x += [x, x]
        knots_y += [y, y]
        t += d
    ts = np.arange(0.0, t, 1000.0 / rate)
    xs = np.interp(ts, knots_t, knots_x) + rng.normal(0, noise_px, ts.size)
    ys = np.interp(ts, knots_t, knots_y) + rng.normal(0, noise_px, ts.size)
    valid = np.ones_like(ts)
    if blink is not None:
        off = (ts >= blink[0]) & (ts < blink[1])
        xs[off] = np.nan
        ys[off] = np.nan
        valid[off] = 0.0
    return np.column_stack((ts, xs, ys, valid))


@pytest.mark.parametrize("method", ["ivt", "idt"])
@pytest.mark.parametrize(("rate", "noise"), [(30.0, 4.0), (1000.0, 1.0)])
def test_known_fixations_are_found(method: str, rate: float, noise: float) -> None:
    ev = detect_fixations(_signal(rate, noise), method, pixels_per_degree=PPD)  # type: ignore[arg-type]
    fix = ev.fixations
    assert len(fix) == len(TRUE)
    true = np.array(TRUE)
    np.testing.assert_allclose(fix.x, true[:, 0], atol=0.3 * PPD)
    np.testing.assert_allclose(fix.y, true[:, 1], atol=0.3 * PPD)
    # Durations within two samples plus the saccade-edge ambiguity at high rates.
    tol = 2 * 1000.0 / rate + 40.0
    np.testing.assert_allclose(fix.duration_ms, true[:, 2], atol=tol)
    assert (np.diff(fix.start_ms) > 0).all() and (fix.end_ms > fix.start_ms).all()
    sac = ev.saccades
    assert ev.unit == "deg"
    want_amp = np.hypot(np.diff(true[:, 0]), np.diff(true[:, 1])) / PPD
    np.testing.assert_allclose(sac.amplitude, want_amp, atol=0.4)
    np.testing.assert_array_equal(sac.start_ms, fix.end_ms[:-1])
    assert not sac.across_gap.any()
    # The table converts straight into a MultiMatch scanpath (x, y, seconds).
    np.testing.assert_allclose(fix.scanpath()[:, 2], fix.duration_ms / 1000.0)


def test_pixel_thresholds_match_degree_thresholds() -> None:
    s = _signal(60.0, 2.0)
    deg = detect_fixations(s, "ivt", pixels_per_degree=PPD, velocity_threshold=30.0)
    px = detect_fixations(s, "ivt", velocity_threshold=30.0 * PPD, merge_distance=0.5 * PPD)
    np.testing.assert_allclose(deg.fixations.x, px.fixations.x)
    assert px.unit == "px"
    np.testing.assert_allclose(px.saccades.amplitude, deg.saccades.amplitude * PPD)


def test_short_blink_inside_a_fixation_does_not_split_it() -> None:
    s = _signal(250.0, 1.0, blink=(120.0, 170.0))  # 50 ms inside the first fixation
    fix = detect_fixations(s, "idt", pixels_per_degree=PPD).fixations
    assert len(fix) == len(TRUE)
    assert fix.duration_ms[0] == pytest.approx(300.0, abs=30.0)


def test_long_dropout_between_fixations_is_flagged() -> None:
    # Lose 150 ms spanning the saccade between fixations 2 and 3 (t = 595..640 ms).
    s = _signal(120.0, 1.0, blink=(560.0, 710.0))
    ev = detect_fixations(s, "ivt", pixels_per_degree=PPD)
    assert len(ev.fixations) == len(TRUE)
    assert ev.saccades.across_gap.tolist() == [False, True, False, False]
    assert np.isnan(ev.saccades.peak_velocity[1])


def test_low_rate_webcam_data_with_jitter() -> None:
    # 15 Hz with jittered timestamps and webcam-like noise.
    s = _signal(15.0, 6.0, seed=2)
    rng = np.random.default_rng(1)
    s[:, 0] += np.sort(rng.uniform(0, 10, s.shape[0]))
    s[:, 0] = np.maximum.accumulate(s[:, 0])
    fix = detect_fixations(s, "idt", pixels_per_degree=PPD, dispersion_threshold=1.5).fixations
    assert len(fix) == len(TRUE)
    np.testing.assert_allclose(fix.x, np.array(TRUE)[:, 0], atol=0.5 * PPD)


def test_no_valid_samples_gives_empty_tables() -> None:
    s = _signal(60.0, 1.0)
    s[:, 3] = 0.0
    ev = detect_fixations(s, "ivt")
    assert len(ev.fixations) == 0 and ev.saccades.amplitude.shape == (0,)
    with pytest.raises(ValueError, match="method"):
        detect_fixations(s, "nope")  # type: ignore[arg-type]
