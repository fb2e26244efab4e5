"""Fixation detection (I-VT and I-DT) with fixation and saccade tables.

Both detectors run on gap-filled, lightly smoothed samples (:mod:`trainer.gaze.preprocess`) and
share the post-processing: merge neighbouring fixations split by noise or a short dropout, then drop
fixations shorter than ``min_duration_ms``.  Thresholds are in degrees of visual angle when
``pixels_per_degree`` is given and in pixels otherwise; coordinates in the tables are always pixels.

Sampling rates from 10 Hz (webcam) to 1,200 Hz (research trackers) work with the same defaults:
velocities are measured across a window of about 20 ms (at least one sample either side), and the
smoothing window grows with the rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from trainer.arrays import FloatArray
from trainer.gaze.preprocess import as_samples, interpolate_gaps, smooth, valid_runs

#: Pixels per degree assumed for the pixel defaults (about 60 cm from a 96 dpi screen).
DEFAULT_PX_PER_DEG = 35.0
#: Default I-VT velocity threshold, degrees per second.
DEFAULT_VELOCITY_DEG_S = 30.0
#: Default I-DT dispersion threshold ((max x - min x) + (max y - min y)), degrees.
DEFAULT_DISPERSION_DEG = 1.0
#: Default largest distance between two fixations merged into one, degrees.
DEFAULT_MERGE_DEG = 0.5

__all__ = [
    "FixationTable",
    "GazeEvents",
    "SaccadeTable",
    "angular_positions",
    "detect_fixations",
    "screen_pixels_per_degree",
]


def screen_pixels_per_degree(
    screen_px: float | None, screen_mm: float | None, distance_mm: float | None
) -> float | None:
    """Screen pixels per degree of visual angle at the centre of a screen ``screen_px`` pixels
    (CSS px) and ``screen_mm`` millimetres wide, seen from ``distance_mm``; None if any is unknown.

    One degree spans ``2 * d * tan(0.5 deg)`` millimetres at distance ``d``.
    """
    if not screen_px or not screen_mm or not distance_mm or min(screen_px, screen_mm, distance_mm) <= 0:
        return None
    return float(screen_px / screen_mm * 2.0 * distance_mm * np.tan(np.radians(0.5)))


def angular_positions(
    screen_xy: ArrayLike, image_xy: ArrayLike, zoom: ArrayLike, pixels_per_degree: float
) -> FloatArray:
    """(m, 2) gaze in degrees of visual angle from each sample's screen position.

    Where a sample has no screen position (NaN, e.g. imported data recorded in image pixels), its
    image position times the sample's zoom (image px -> screen px; 1 when unknown) stands in.

    Args:
        screen_xy: (m, 2) screen px. image_xy: (m, 2) image px. zoom: (m,) image px -> screen px.
        pixels_per_degree: screen px per degree (:func:`screen_pixels_per_degree` or a setting).
    """
    if pixels_per_degree <= 0:
        raise ValueError(f"pixels_per_degree must be positive, got {pixels_per_degree}")
    screen = np.asarray(screen_xy, dtype=np.float64).reshape(-1, 2)
    image = np.asarray(image_xy, dtype=np.float64).reshape(-1, 2)
    z = np.asarray(zoom, dtype=np.float64).reshape(-1)
    z = np.where(np.isfinite(z) & (z > 0), z, 1.0)
    missing = ~np.isfinite(screen).all(1)
    out = screen.copy()
    out[missing] = image[missing] * z[missing, None]
    return out / pixels_per_degree


@dataclass(frozen=True)
class FixationTable:
    """Detected fixations, one entry per fixation, in time order.

    Attributes:
        start_ms, end_ms: (k,) first sample time and end of the last sample's interval.
        x, y: (k,) mean position, pixels.
        dispersion: (k,) (max x - min x) + (max y - min y) of its samples, in ``unit``.
        n_samples: (k,) samples in the fixation.
    """

    start_ms: FloatArray
    end_ms: FloatArray
    x: FloatArray
    y: FloatArray
    dispersion: FloatArray
    n_samples: NDArray[np.int64]

    @property
    def duration_ms(self) -> FloatArray:
        """(k,) durations in milliseconds."""
        return self.end_ms - self.start_ms

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def scanpath(self) -> FloatArray:
        """(k, 3) x (px), y (px), duration (s): the input of :func:`trainer.gaze.multimatch`."""
        return np.stack((self.x, self.y, self.duration_ms / 1000.0), axis=1)


@dataclass(frozen=True)
class SaccadeTable:
    """Movements between consecutive fixations.

    Attributes:
        start_ms, end_ms: (k-1,) end of one fixation and start of the next.
        x0, y0, x1, y1: (k-1,) fixation centres it connects, pixels.
        amplitude: (k-1,) distance between them, in ``unit``.
        peak_velocity: (k-1,) highest sample velocity in between, ``unit``/s (NaN if no sample).
        across_gap: (k-1,) True where invalid samples lie in between (a blink or dropout).
    """

    start_ms: FloatArray
    end_ms: FloatArray
    x0: FloatArray
    y0: FloatArray
    x1: FloatArray
    y1: FloatArray
    amplitude: FloatArray
    peak_velocity: FloatArray
    across_gap: NDArray[np.bool_]


@dataclass(frozen=True)
class GazeEvents:
    """Result of :func:`detect_fixations`; ``unit`` is ``"deg"`` or ``"px"``."""

    fixations: FixationTable
    saccades: SaccadeTable
    unit: str


def _velocity(t: FloatArray, x: FloatArray, y: FloatArray, ok: NDArray[np.bool_], half: int) -> FloatArray:
    """(m,) speed by central differences ``half`` samples apart, clipped at run edges; NaN if invalid."""
    m = t.shape[0]
    v = np.full(m, np.nan)
    for a, b in valid_runs(ok):
        if b - a < 2:
            continue
        idx = np.arange(a, b)
        lo = np.maximum(idx - half, a)
        hi = np.minimum(idx + half, b - 1)
        dt = (t[hi] - t[lo]) / 1000.0
        with np.errstate(invalid="ignore", divide="ignore"):
            v[a:b] = np.hypot(x[hi] - x[lo], y[hi] - y[lo]) / dt
    return v


def _idt_runs(
    t: FloatArray, x: FloatArray, y: FloatArray, ok: NDArray[np.bool_], max_disp: float, min_ms: float
) -> list[tuple[int, int]]:
    """Salvucci & Goldberg I-DT on each valid run: half-open sample ranges of fixations."""
    out: list[tuple[int, int]] = []
    tl, xl, yl = t.tolist(), x.tolist(), y.tolist()
    for a, b in valid_runs(ok).tolist():
        i = a
        while i < b:
            # Smallest window covering min_ms.
            j = int(np.searchsorted(t[i:b], tl[i] + min_ms, side="left")) + i
            if j >= b:
                break
            wx, wy = xl[i : j + 1], yl[i : j + 1]
            x_lo, x_hi, y_lo, y_hi = min(wx), max(wx), min(wy), max(wy)
            if (x_hi - x_lo) + (y_hi - y_lo) > max_disp:
                i += 1
                continue
            # Grow while the dispersion stays under the threshold (running bounds: O(length)).
            j += 1
            while j < b:
                nx, ny = xl[j], yl[j]
                if (max(x_hi, nx) - min(x_lo, nx)) + (max(y_hi, ny) - min(y_lo, ny)) > max_disp:
                    break
                x_lo, x_hi, y_lo, y_hi = min(x_lo, nx), max(x_hi, nx), min(y_lo, ny), max(y_hi, ny)
                j += 1
            out.append((i, j))
            i = j
    return out


def _merge(
    runs: list[tuple[int, int]],
    t: FloatArray,
    xu: FloatArray,
    yu: FloatArray,
    max_gap_ms: float,
    max_dist: float,
) -> list[tuple[int, int]]:
    """Join consecutive fixations closer than ``max_dist`` (unit) and ``max_gap_ms`` apart."""
    merged: list[tuple[int, int]] = []
    for a, b in runs:
        if merged:
            pa, pb = merged[-1]
            gap = t[a] - t[pb - 1]
            d = np.hypot(xu[pa:pb].mean() - xu[a:b].mean(), yu[pa:pb].mean() - yu[a:b].mean())
            if gap <= max_gap_ms and d <= max_dist:
                merged[-1] = (pa, b)
                continue
        merged.append((a, b))
    return merged


def detect_fixations(
    samples: ArrayLike,
    method: Literal["ivt", "idt"] = "ivt",
    *,
    pixels_per_degree: float | None = None,
    velocity_threshold: float | None = None,
    dispersion_threshold: float | None = None,
    min_duration_ms: float = 80.0,
    max_gap_ms: float = 75.0,
    merge_distance: float | None = None,
    smooth_window: int | None = None,
    angular: ArrayLike | None = None,
) -> GazeEvents:
    """Detect fixations and the saccades between them.

    Args:
        samples: (m, 4) float array: t_ms, x (px), y (px), valid (1 tracked, 0 not; NaN x/y are
            treated as invalid).  Any rate, timestamps non-decreasing.
        method: ``"ivt"`` (velocity threshold) or ``"idt"`` (dispersion threshold).
        pixels_per_degree: Converts pixels to degrees; when given, thresholds are in degrees.
        velocity_threshold: I-VT threshold, deg/s (default 30) or px/s (default 30 * 35).
        dispersion_threshold: I-DT threshold on (max x - min x) + (max y - min y), deg (default 1)
            or px (default 35).
        min_duration_ms: Shortest fixation kept.
        max_gap_ms: Invalid stretches up to this long are interpolated, and fixations this close in
            time may merge.
        merge_distance: Fixations closer than this (deg, default 0.5; px default 17.5) merge.
        smooth_window: Median filter length in samples (odd); default 3 below 100 Hz, about 10 ms
            of samples above.
        angular: (m, 2) where each sample's gaze was in degrees of visual angle (e.g. its screen
            position over the screen's pixels per degree: :func:`angular_positions`). Velocities,
            dispersions and merge distances are then measured there, so the display's zoom and
            pan do not change what counts as a fixation, while the tables keep the coordinates of
            ``samples`` (image pixels). Thresholds are in degrees; ``pixels_per_degree`` is unused.

    Returns:
        :class:`GazeEvents` with the fixation table (time order) and the saccade table.
    """
    if method not in ("ivt", "idt"):
        raise ValueError(f"method must be 'ivt' or 'idt', got {method!r}")
    if pixels_per_degree is not None and pixels_per_degree <= 0:
        raise ValueError(f"pixels_per_degree must be positive, got {pixels_per_degree}")
    if angular is not None:
        pixels_per_degree = None
    scale = 1.0 / pixels_per_degree if pixels_per_degree else 1.0
    in_degrees = bool(pixels_per_degree) or angular is not None
    px_default = 1.0 if in_degrees else DEFAULT_PX_PER_DEG
    vel_thr = velocity_threshold if velocity_threshold is not None else DEFAULT_VELOCITY_DEG_S * px_default
    disp_thr = (
        dispersion_threshold if dispersion_threshold is not None else DEFAULT_DISPERSION_DEG * px_default
    )
    merge_d = merge_distance if merge_distance is not None else DEFAULT_MERGE_DEG * px_default

    raw = as_samples(samples)
    s = interpolate_gaps(raw, max_gap_ms=max_gap_ms)
    t = s[:, 0]
    dt = float(np.median(np.diff(t))) if t.shape[0] > 1 else 1.0
    rate = 1000.0 / dt if dt > 0 else 1000.0
    if smooth_window is None:
        smooth_window = 3 if rate < 100 else max(3, int(round(rate * 0.01)) | 1)
    s = smooth(s, window=smooth_window)
    ok = s[:, 3] > 0
    if angular is None:
        xu, yu = s[:, 1] * scale, s[:, 2] * scale
    else:
        ang = np.asarray(angular, dtype=np.float64)
        if ang.shape != (raw.shape[0], 2):
            raise ValueError(f"angular must have shape ({raw.shape[0]}, 2), got {ang.shape}")
        # The same gap filling and smoothing as the image coordinates, on the angular track.
        track = np.column_stack((raw[:, 0], ang, raw[:, 3]))
        track[~np.isfinite(track[:, 1:3]).all(1), 3] = 0.0
        a = smooth(interpolate_gaps(track, max_gap_ms=max_gap_ms), window=smooth_window)
        ok &= a[:, 3] > 0
        xu, yu = a[:, 1], a[:, 2]
    half = max(1, int(round(rate * 0.01)))
    v = _velocity(t, xu, yu, ok, half)

    if method == "ivt":
        runs = [(int(a), int(b)) for a, b in valid_runs(ok & (v < vel_thr)).tolist()]
    else:
        runs = _idt_runs(t, xu, yu, ok, disp_thr, min_duration_ms)
    runs = _merge(runs, t, xu, yu, max_gap_ms, merge_d)
    runs = [(a, b) for a, b in runs if (t[b - 1] - t[a]) + dt >= min_duration_ms]
    return _tables(runs, s, t, xu, yu, v, ok, dt, "deg" if in_degrees else "px")


def _tables(
    runs: list[tuple[int, int]],
    s: FloatArray,
    t: FloatArray,
    xu: FloatArray,
    yu: FloatArray,
    v: FloatArray,
    ok: NDArray[np.bool_],
    dt: float,
    unit: str,
) -> GazeEvents:
    """Build the fixation and saccade tables from fixation sample ranges."""
    k = len(runs)
    a = np.array([r[0] for r in runs], dtype=np.int64)
    b = np.array([r[1] for r in runs], dtype=np.int64)
    x = np.array([s[i:j, 1].mean() for i, j in runs]) if k else np.zeros(0)
    y = np.array([s[i:j, 2].mean() for i, j in runs]) if k else np.zeros(0)
    disp = np.array([np.ptp(xu[i:j]) + np.ptp(yu[i:j]) for i, j in runs]) if k else np.zeros(0)
    start = t[a] if k else np.zeros(0)
    end = t[b - 1] + dt if k else np.zeros(0)
    fix = FixationTable(start, end, x, y, disp, (b - a).astype(np.int64))
    peak = np.full(max(k - 1, 0), np.nan)
    gap = np.zeros(max(k - 1, 0), dtype=bool)
    for q in range(k - 1):
        seg_v = v[b[q] : a[q + 1]]
        if np.isfinite(seg_v).any():
            peak[q] = np.nanmax(seg_v)
        gap[q] = not ok[b[q] : a[q + 1]].all()
    xm = np.array([xu[i:j].mean() for i, j in runs]) if k else np.zeros(0)
    ym = np.array([yu[i:j].mean() for i, j in runs]) if k else np.zeros(0)
    amp = np.hypot(np.diff(xm), np.diff(ym))
    sac = SaccadeTable(end[:-1], start[1:], x[:-1], y[:-1], x[1:], y[1:], amp, peak, gap)
    return GazeEvents(fix, sac, unit)
