"""Simulated readers: plausible reading sessions (fixations and raw gaze samples) on synthetic cases.

A session is planned as a sequence of fixations (``scanpaths.py``): a first look at the image
centre, systematic search over the breast in the reader's own pattern, detection of the finding
(sooner the more conspicuous it is), a class-typical dwell on it, more search, and a revisit before
the decision.  Normal cases get a complete search and a few re-checks instead.  Glances off the
image (to the report form) and blinks are interleaved.  Saccades between fixations follow the main
sequence (duration 21 ms + 2.2 ms per degree, minimum-jerk velocity profile), and the tracker samples
the eye at ``sample_rate_hz`` with slow drift, a per-session calibration offset, white noise, and
dropouts.

Sample validity: a sample is valid (1) when the eye was tracked and the measured point lies on the
image (``-0.5 <= x <= W - 0.5`` and likewise for ``y``).  Blinks and dropouts have ``x = y = NaN``;
off-image samples keep their measured coordinates.  ``fixations`` hold the true fixation targets
(no measurement error) of the on-image fixations; a fixation cut below 150 ms by the end of a
fixed-length session is left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from trainer.synthetic.images import SyntheticCase
from trainer.synthetic.scanpaths import (
    DWELL_DURATION_SCALE,
    MIN_FIXATION_MS,
    SEARCH_PATTERNS,
    Fixation,
    conspicuity,
    draw_durations,
    dwell,
    search_grid,
    sweep,
)

# Reading time relative to a normal case: quick decisions on (likely benign) round masses, longer
# scrutiny of a spiculated mass and of calcifications.
CLASS_TIME = {"normal": 1.0, "round_mass": 0.7, "spiculated_mass": 1.1, "calcifications": 1.3}
# Free search relative to the reader's habit: a suspicious spiculated mass prompts a search for
# satellite lesions and distortion; calcifications are scrutinised close up.
CLASS_SEARCH = {"round_mass": 0.8, "spiculated_mass": 1.5, "calcifications": 0.6}
_SACCADE_MS = (20.0, 80.0)
_BLINK_MS = (100.0, 250.0)
_AWAY_MS = (300.0, 700.0)


@dataclass(frozen=True)
class ReaderProfile:
    """A simulated reader's tracker and habits.

    Attributes:
        name: Reader name.
        seed: Mixed into every session's seed, so readers differ on the same case.
        sample_rate_hz: Tracker rate (30 webcam-like, 60-120 for trackers).
        noise_px: Std of white measurement noise per sample, image pixels.
        fixation_ms_mean: Mean fixation duration during search, ms.
        fixation_ms_std: Its standard deviation, ms.
        saccade_speed: Multiplies main-sequence velocity (saccade duration is divided by it).
        free_search_fraction: Share of the reading time of a finding case spent searching.
        search_pattern: ``"rows"`` or ``"columns"`` systematic sweep.
        dwell_scale: Multiplies the number of fixations spent on a finding.
        session_s: Typical reading time of a normal case, seconds.
        blink_rate_hz: Blinks per second.
        dropout_rate: Fraction of samples lost to tracking dropouts (in short bursts).
        offimage_rate_hz: Glances off the image (e.g. to the report form) per second.
        drift_px: Std of slow gaze drift, image pixels.
        offset_px: Std of the per-session calibration offset, image pixels.
        timing_jitter_ms: Max jitter of sample timestamps (webcams), ms; order is preserved.
        image_deg: Visual angle subtended by the image width, degrees (for the main sequence).
        miss_rate: Chance of never noticing a finding of zero conspicuity (scaled down for
            conspicuous findings).
    """

    name: str
    seed: int
    sample_rate_hz: float = 60.0
    noise_px: float = 3.0
    fixation_ms_mean: float = 280.0
    fixation_ms_std: float = 90.0
    saccade_speed: float = 1.0
    free_search_fraction: float = 0.35
    search_pattern: str = "rows"
    dwell_scale: float = 1.0
    session_s: float = 10.0
    blink_rate_hz: float = 0.25
    dropout_rate: float = 0.01
    offimage_rate_hz: float = 0.05
    drift_px: float = 1.0
    offset_px: float = 2.0
    timing_jitter_ms: float = 0.0
    image_deg: float = 20.0
    miss_rate: float = 0.05

    def __post_init__(self) -> None:
        positive = (
            "sample_rate_hz",
            "fixation_ms_mean",
            "saccade_speed",
            "dwell_scale",
            "session_s",
            "image_deg",
        )
        for field in positive:
            if not getattr(self, field) > 0:
                raise ValueError(f"{field} must be > 0, got {getattr(self, field)!r}")
        non_negative = (
            "noise_px",
            "fixation_ms_std",
            "blink_rate_hz",
            "offimage_rate_hz",
            "drift_px",
            "offset_px",
            "timing_jitter_ms",
        )
        for field in non_negative:
            if not getattr(self, field) >= 0:
                raise ValueError(f"{field} must be >= 0, got {getattr(self, field)!r}")
        for field in ("free_search_fraction", "dropout_rate", "miss_rate"):
            if not 0 <= getattr(self, field) < 1:
                raise ValueError(f"{field} must be in [0, 1), got {getattr(self, field)!r}")
        if self.search_pattern not in SEARCH_PATTERNS:
            raise ValueError(f"search_pattern must be one of {SEARCH_PATTERNS}, got {self.search_pattern!r}")


DEMO_READERS: tuple[ReaderProfile, ...] = (
    # Methodical: slow horizontal sweeps, long fixations, lingers on findings; 60 Hz tracker.
    ReaderProfile(
        name="reader1",
        seed=1,
        sample_rate_hz=60.0,
        noise_px=3.0,
        fixation_ms_mean=300.0,
        fixation_ms_std=90.0,
        saccade_speed=1.0,
        free_search_fraction=0.3,
        search_pattern="rows",
        dwell_scale=1.2,
        session_s=10.0,
        blink_rate_hz=0.25,
        dropout_rate=0.01,
        offimage_rate_hz=0.05,
    ),
    # Brisk: vertical sweeps, shorter fixations, faster saccades, more free search; 120 Hz tracker.
    ReaderProfile(
        name="reader2",
        seed=2,
        sample_rate_hz=120.0,
        noise_px=2.0,
        fixation_ms_mean=240.0,
        fixation_ms_std=70.0,
        saccade_speed=1.25,
        free_search_fraction=0.4,
        search_pattern="columns",
        dwell_scale=0.9,
        session_s=8.0,
        blink_rate_hz=0.35,
        dropout_rate=0.02,
        offimage_rate_hz=0.1,
        drift_px=0.8,
        offset_px=3.0,
    ),
)

#: A webcam-quality reader (30 Hz, large noise and offset, jittery timestamps, frequent dropouts).
WEBCAM_READER = ReaderProfile(
    name="webcam",
    seed=3,
    sample_rate_hz=30.0,
    noise_px=12.0,
    fixation_ms_mean=280.0,
    fixation_ms_std=90.0,
    free_search_fraction=0.35,
    search_pattern="rows",
    dropout_rate=0.05,
    offimage_rate_hz=0.1,
    drift_px=3.0,
    offset_px=8.0,
    timing_jitter_ms=4.0,
)


@dataclass(frozen=True)
class SimulatedSession:
    """A simulated reading session.

    Attributes:
        fixations: ``(n, 3)`` float64 true fixations on the image: x, y (image px), duration (s).
        samples: ``(m, 4)`` float64 tracker samples: t_ms (from 0, increasing), x, y (image px),
            valid (1.0 tracked and on the image, else 0.0; x and y are NaN when not tracked).
    """

    fixations: np.ndarray
    samples: np.ndarray


def _search(
    case: SyntheticCase, reader: ReaderProfile, rng: np.random.Generator, n: int, start: float
) -> list[Fixation]:
    """``n`` search fixations along the reader's sweep, starting ``start`` (0..1) of the way along it."""
    grid, cell = search_grid(case.image, reader.search_pattern)
    targets = sweep(rng, grid, cell, n, start)
    durations = draw_durations(rng, n, reader.fixation_ms_mean, reader.fixation_ms_std)
    return [Fixation(float(x), float(y), float(d)) for (x, y), d in zip(targets, durations, strict=True)]


def _plan(
    case: SyntheticCase, reader: ReaderProfile, rng: np.random.Generator, total_ms: float
) -> list[Fixation]:
    """Fixation targets filling about ``total_ms`` of reading including saccades (on-image only)."""
    h, w = case.image.shape
    per_fix = reader.fixation_ms_mean + 40.0  # mean search fixation plus a typical saccade
    first = Fixation(
        (w - 1) / 2 + rng.normal(0, 0.03 * w),
        (h - 1) / 2 + rng.normal(0, 0.03 * h),
        float(draw_durations(rng, 1, reader.fixation_ms_mean, reader.fixation_ms_std)[0]),
    )
    n_total = max(int(round(total_ms / per_fix)), 4)
    start = float(rng.uniform(0, 0.15))
    finding = case.findings[0] if case.findings else None
    visible = conspicuity(case.image, finding) if finding is not None else 0.0
    if finding is None or rng.random() < reader.miss_rate * (1.0 - visible):
        # Normal (or missed): a complete systematic search, then a few re-checks anywhere.
        n_sweep = int(round(0.8 * (n_total - 1)))
        recheck = _search(case, reader, rng, n_total - 1 - n_sweep, float(rng.uniform(0, 1)))
        return _on_image([first, *_search(case, reader, rng, n_sweep, start), *recheck], w, h)

    search_share = min(reader.free_search_fraction * CLASS_SEARCH[finding.kind], 0.8)
    n_search = max(int(round(search_share * (n_total - 1))), 1)
    # Obvious findings are caught early in the sweep (peripheral detection), subtle ones late.
    n_before = min(int(rng.geometric(0.15 + 0.6 * visible)) - 1, n_search)
    # The rest of the time goes to the finding (longer for readers who linger): draw plenty of dwell
    # fixations and keep those that fit, counting ~30 ms for each small saccade between them.
    dwell_ms = max(total_ms - per_fix * (n_search + 1), 0.0) * reader.dwell_scale
    dwell_fix_ms = reader.fixation_ms_mean * DWELL_DURATION_SCALE[finding.kind]
    candidates = dwell(
        rng, finding, int(dwell_ms / dwell_fix_ms) + 3, reader.fixation_ms_mean, reader.fixation_ms_std
    )
    elapsed = np.cumsum([f.duration_ms + 30.0 for f in candidates])
    on_finding = candidates[: max(int(np.searchsorted(elapsed, dwell_ms, side="right")), 2)]
    # Most of the dwell on first detection, the rest on a revisit before deciding.
    n_first = max(int(round(0.7 * len(on_finding))), 1)
    searching = _search(case, reader, rng, n_search, start)
    plan = [first, *searching[:n_before], *on_finding[:n_first], *searching[n_before:], *on_finding[n_first:]]
    return _on_image(plan, w, h)


def _on_image(plan: list[Fixation], w: int, h: int) -> list[Fixation]:
    """Targets clipped to the image: jitter near an edge must not send an image fixation off it."""
    return [
        Fixation(float(np.clip(f.x, 0, w - 1)), float(np.clip(f.y, 0, h - 1)), f.duration_ms) for f in plan
    ]


def _saccade_ms(dist_px: np.ndarray, width: int, reader: ReaderProfile) -> np.ndarray:
    """Main sequence: 21 ms + 2.2 ms/deg, divided by the reader's speed, clipped to 20-80 ms."""
    amplitude_deg = dist_px * reader.image_deg / width
    return np.clip((21.0 + 2.2 * amplitude_deg) / reader.saccade_speed, *_SACCADE_MS)


def simulate_session(
    case: SyntheticCase, reader: ReaderProfile, *, seed: int, duration_s: float | None = None
) -> SimulatedSession:
    """Simulate one reader reading one case.

    Args:
        case: The case; its image (tissue, finding conspicuity) and findings steer the gaze.
        reader: Tracker and habits.
        seed: Session seed; the session is a pure function of ``(case, reader, seed, duration_s)``.
        duration_s: Fixed session length in seconds; by default the reader's typical time for the
            case's class, varied per session.

    Returns:
        The session (see ``SimulatedSession``).
    """
    if duration_s is not None and not duration_s > 0:
        raise ValueError(f"duration_s must be > 0, got {duration_s!r}")
    rng = np.random.default_rng(np.random.SeedSequence([seed, reader.seed, case.seed]))
    h, w = case.image.shape
    if duration_s is None:
        planned_ms = reader.session_s * 1000.0 * CLASS_TIME[case.label] * rng.lognormal(0.0, 0.15)
    else:
        planned_ms = duration_s * 1000.0
    plan = _plan(case, reader, rng, planned_ms)
    kinds, xs, ys, durs = _timeline(plan, reader, rng, w, h)
    end_ms = float(np.sum(durs)) if duration_s is None else duration_s * 1000.0
    while np.sum(durs) < end_ms:
        # A fixed length outlasting the plan: the reader goes on re-checking the image.
        plan = plan + _on_image(_search(case, reader, rng, 8, float(rng.uniform(0, 1))), w, h)
        kinds, xs, ys, durs = _timeline(plan, reader, rng, w, h)
    starts = np.concatenate([[0.0], np.cumsum(durs)[:-1]])
    samples = _sample(kinds, xs, ys, starts, durs, end_ms, reader, rng, w, h)

    is_fix = (kinds == _FIX) & (starts < end_ms)
    cut = np.minimum(starts + durs, end_ms) - starts
    keep = is_fix & (cut >= MIN_FIXATION_MS)
    fixations = np.stack([xs[keep, 1], ys[keep, 1], cut[keep] / 1000.0], axis=1)
    return SimulatedSession(fixations=fixations.astype(np.float64), samples=samples)


_FIX, _SACCADE, _BLINK, _AWAY = 0, 1, 2, 3


def _timeline(
    plan: list[Fixation], reader: ReaderProfile, rng: np.random.Generator, w: int, h: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Events between fixations: saccades, blinks and off-image glances.

    Returns:
        ``kinds (k,)`` int, ``xs (k, 2)`` and ``ys (k, 2)`` start/end positions, ``durs (k,)`` ms.
    """
    total_s = sum(f.duration_ms for f in plan) / 1000.0
    points: list[tuple[int, float, float, float]] = [(_FIX, f.x, f.y, f.duration_ms) for f in plan]
    # Off-image glances: to the report form beside the image, inserted between fixations.
    for _ in range(int(rng.poisson(reader.offimage_rate_hz * total_s))):
        at = int(rng.integers(1, len(points) + 1))
        away = (_AWAY, w * rng.uniform(1.1, 1.4), h * rng.uniform(0.2, 0.8), rng.uniform(*_AWAY_MS))
        points.insert(at, away)
    blinks_after = set(
        rng.choice(
            len(points),
            size=min(int(rng.poisson(reader.blink_rate_hz * total_s)), len(points)),
            replace=False,
        ).tolist()
    )
    kinds: list[int] = []
    xs: list[tuple[float, float]] = []
    ys: list[tuple[float, float]] = []
    durs: list[float] = []
    for i, (kind, x, y, dur) in enumerate(points):
        if i > 0:
            px, py = xs[-1][1], ys[-1][1]
            kinds.append(_SACCADE)
            xs.append((px, x))
            ys.append((py, y))
            durs.append(float(_saccade_ms(np.hypot(x - px, y - py), w, reader)))
        kinds.append(kind)
        xs.append((x, x))
        ys.append((y, y))
        durs.append(dur)
        if i in blinks_after:
            kinds.append(_BLINK)
            xs.append((x, x))
            ys.append((y, y))
            durs.append(rng.uniform(*_BLINK_MS))
    return np.asarray(kinds), np.asarray(xs), np.asarray(ys), np.asarray(durs)


def _sample(
    kinds: np.ndarray,
    xs: np.ndarray,
    ys: np.ndarray,
    starts: np.ndarray,
    durs: np.ndarray,
    end_ms: float,
    reader: ReaderProfile,
    rng: np.random.Generator,
    w: int,
    h: int,
) -> np.ndarray:
    """Tracker samples of the timeline up to ``end_ms``; see the module docstring. Returns ``(m, 4)``."""
    period = 1000.0 / reader.sample_rate_hz
    t = np.arange(int(np.ceil(end_ms / period))) * period
    if reader.timing_jitter_ms > 0:
        t = t + rng.uniform(-1, 1, t.shape) * min(reader.timing_jitter_ms, 0.45 * period)
        t[0] = 0.0
    idx = np.clip(np.searchsorted(starts, t, side="right") - 1, 0, len(starts) - 1)
    frac = np.clip((t - starts[idx]) / durs[idx], 0.0, 1.0)
    s = frac**3 * (10 - 15 * frac + 6 * frac**2)  # minimum-jerk position profile
    x = xs[idx, 0] + (xs[idx, 1] - xs[idx, 0]) * s
    y = ys[idx, 0] + (ys[idx, 1] - ys[idx, 0]) * s

    m = len(t)
    sigma = max(150.0 / period, 1.0)  # drift correlated over ~150 ms
    drift = ndimage.gaussian_filter1d(rng.standard_normal((2, m)), sigma, axis=1, mode="wrap")
    drift *= reader.drift_px / (drift.std(axis=1, keepdims=True) + 1e-12)
    offset = rng.normal(0.0, reader.offset_px, 2)
    x = x + offset[0] + drift[0] + rng.normal(0.0, reader.noise_px, m)
    y = y + offset[1] + drift[1] + rng.normal(0.0, reader.noise_px, m)

    lost = kinds[idx] == _BLINK
    if reader.dropout_rate > 0:
        burst = 3.0  # mean dropout burst length, samples
        starts_lost = np.flatnonzero(rng.random(m) < reader.dropout_rate / burst)
        for b, length in zip(starts_lost, rng.geometric(1.0 / burst, len(starts_lost)), strict=True):
            lost[b : b + length] = True
    x[lost] = np.nan
    y[lost] = np.nan
    on_image = (x >= -0.5) & (x <= w - 0.5) & (y >= -0.5) & (y <= h - 0.5)
    valid = (~lost & on_image).astype(np.float64)
    return np.stack([t, x, y, valid], axis=1)


def simulate_dataset_sessions(
    cases: Sequence[SyntheticCase], readers: Sequence[ReaderProfile] = DEMO_READERS, seed: int = 0
) -> dict[tuple[str, int], SimulatedSession]:
    """One session per reader and case.

    Args:
        cases: Cases to read.
        readers: Readers (distinct names).
        seed: Base seed; each (reader, case index) gets its own derived session seed.

    Returns:
        ``{(reader name, case index): session}``, reader-major in input order.
    """
    names = [r.name for r in readers]
    if len(set(names)) != len(names):
        raise ValueError(f"reader names must be distinct, got {names}")
    sessions: dict[tuple[str, int], SimulatedSession] = {}
    for reader in readers:
        for i, case in enumerate(cases):
            session_seed = int(np.random.SeedSequence([seed, i]).generate_state(1)[0])
            sessions[(reader.name, i)] = simulate_session(case, reader, seed=session_seed)
    return sessions
