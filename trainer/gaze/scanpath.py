"""Vector-based scanpath representation and MultiMatch simplification (grouping).

A fixation sequence ``(n, 3)`` of ``x, y, duration`` becomes ``n - 1`` saccade vectors starting at
each fixation.  Simplification merges consecutive saccades by direction (angle below ``tdir``) and by
amplitude (length below ``tamp``) when the fixations involved are shorter than ``tdur``, repeated
until the number of durations stops changing.  The rules, including their quirks (the amplitude rule
for the last saccade overwrites the previous output vector and adds an extra duration), follow
Jarodzka et al. 2010 as implemented by the reference package ``multimatch-gaze`` 0.1.3, so that
results agree with it.  Each pass is vectorised: the greedy left-to-right merge of a chain of
mergeable neighbours merges the 1st, 3rd, 5th... link of every run, which is a parity test.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from trainer.arrays import FloatArray


class SimplificationError(ValueError):
    """Raised where the reference simplification fails (it raises on some scanpaths)."""


@dataclass(frozen=True)
class Scanpath:
    """Saccade vectors of one scanpath.

    Attributes:
        x, y: (s,) start point of each saccade (the fixation it leaves), pixels.
        lenx, leny: (s,) saccade vector components, pixels.
        theta: (s,) direction, radians in (-pi, pi].
        rho: (s,) amplitude, pixels.
        dur: (f,) fixation durations in seconds; ``dur[i]`` belongs to saccade ``i``.  ``f`` is
            normally ``s + 1`` but can be larger after amplitude grouping of the last saccade.
    """

    x: FloatArray
    y: FloatArray
    lenx: FloatArray
    leny: FloatArray
    theta: FloatArray
    rho: FloatArray
    dur: FloatArray

    @property
    def n_saccades(self) -> int:
        """Number of saccade vectors ``s``."""
        return int(self.lenx.shape[0])


def _polar(lenx: FloatArray, leny: FloatArray) -> tuple[FloatArray, FloatArray]:
    # Written as sqrt(x**2 + y**2), not hypot: the alignment cost must round like the reference.
    return np.sqrt(lenx**2 + leny**2), np.arctan2(leny, lenx)


def make_scanpath(fixations: NDArray[np.floating]) -> Scanpath:
    """Build the saccade-vector representation of a fixation sequence.

    Args:
        fixations: (n, 3) array of x (px), y (px), duration (s); n >= 1.

    Returns:
        The unsimplified :class:`Scanpath` with ``n - 1`` saccades.
    """
    fix = np.asarray(fixations, dtype=np.float64)
    if fix.ndim != 2 or fix.shape[1] != 3:
        raise ValueError(f"fixations must have shape (n, 3), got {fix.shape}")
    fx, fy, dur = fix[:, 0].copy(), fix[:, 1].copy(), fix[:, 2].copy()
    lenx, leny = np.diff(fx), np.diff(fy)
    rho, theta = _polar(lenx, leny)
    return Scanpath(fx[:-1], fy[:-1], lenx, leny, theta, rho, dur)


def _alternate_in_runs(can: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """Greedy left-to-right merge decisions for a chain.

    ``can[i]`` says saccade ``i`` may merge with ``i + 1``.  Scanning left to right, a merge at ``i``
    consumes ``i + 1``, so inside each run of ``True`` only every second link (from the run's start)
    merges.
    """
    if can.size == 0:
        return can
    idx = np.arange(can.size)
    starts = can & ~np.concatenate(([False], can[:-1]))
    run_start = np.maximum.accumulate(np.where(starts, idx, 0))
    return can & ((idx - run_start) % 2 == 0)


def _exact_angle_deg(v1x: float, v1y: float, v2x: float, v2y: float) -> float:
    """Angle between two vectors computed with the reference's scalar formula (BLAS dot, math.acos).

    Used only near the decision boundary, where rounding decides whether two saccades merge, and
    where |cos| reaches 1 (math.acos raises there; so does the reference).
    """
    v1, v2 = np.array([v1x, v1y]), np.array([v2x, v2y])
    with np.errstate(invalid="ignore", divide="ignore"):
        c = np.dot(v1, v2) / (np.linalg.norm(v1) * np.linalg.norm(v2))
    try:
        return math.degrees(math.acos(c))
    except ValueError as exc:
        raise SimplificationError(f"saccade angle undefined (cos={c!r})") from exc


def _direction_mergeable(
    sp: Scanpath, tdir: float, tdur: float, strict: bool
) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """(s-1,) merge candidates by direction, and (s-1,) flags where the angle is undefined.

    With ``strict=False`` a cosine that rounds past +-1 is clipped (angle 0 or 180 degrees) and
    never flagged.
    """
    lx, ly = sp.lenx, sp.leny
    norm = np.sqrt(lx * lx + ly * ly)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = (lx[:-1] * lx[1:] + ly[:-1] * ly[1:]) / (norm[:-1] * norm[1:])
        angle = np.degrees(np.arccos(cos))
    # Recompute exactly where vectorised rounding could flip the decision or the domain check.
    risky = (np.abs(np.abs(cos) - 1.0) < 1e-12) | (np.abs(angle - tdir) < 1e-9 * max(1.0, abs(tdir)))
    bad = np.zeros(angle.shape, dtype=bool)
    for i in np.flatnonzero(risky):
        try:
            angle[i] = _exact_angle_deg(lx[i], ly[i], lx[i + 1], ly[i + 1])
        except SimplificationError:
            if strict:
                bad[i] = True
                angle[i] = np.nan
            else:
                angle[i] = 0.0 if cos[i] > 0 else 180.0
    can = (angle < tdir) & (sp.dur[1 : sp.n_saccades] < tdur)
    return can, bad


def _from_fields(fields: list[FloatArray], dur: FloatArray) -> Scanpath:
    x, y, lenx, leny, theta, rho = fields
    return Scanpath(x, y, lenx, leny, theta, rho, dur)


def _rebuild(sp: Scanpath, merge: NDArray[np.bool_], keep_last: bool) -> tuple[list[FloatArray], FloatArray]:
    """Apply merge decisions; returns saccade fields and the per-output durations."""
    s = sp.n_saccades
    if keep_last and not merge.any():
        # Nothing merges (the common last pass): every saccade is kept as it is.
        return [sp.x, sp.y, sp.lenx, sp.leny, sp.theta, sp.rho], sp.dur[:s]
    merge_full = np.concatenate((merge, [False]))
    consumed = np.concatenate(([False], merge_full[:-1]))
    out = np.flatnonzero(~consumed)
    if not keep_last and out.size and out[-1] == s - 1:
        out = out[:-1]
    nxt = np.minimum(out + 1, s - 1)
    m = merge_full[out]
    lenx = np.where(m, sp.lenx[out] + sp.lenx[nxt], sp.lenx[out])
    leny = np.where(m, sp.leny[out] + sp.leny[nxt], sp.leny[out])
    rho_new, theta_new = _polar(lenx, leny)
    rho = np.where(m, rho_new, sp.rho[out])
    theta = np.where(m, theta_new, sp.theta[out])
    return [sp.x[out], sp.y[out], lenx, leny, theta, rho], sp.dur[out]


def simplify_by_direction(sp: Scanpath, tdir: float, tdur: float, strict: bool = False) -> Scanpath:
    """One direction-grouping pass (the reference's ``simdir``)."""
    s = sp.n_saccades
    if s < 1:
        return sp
    can, bad = _direction_mergeable(sp, tdir, tdur, strict)
    merge = _alternate_in_runs(can)
    if bad.any():
        visited = ~np.concatenate(([False], merge[:-1]))
        if (bad & visited).any():
            raise SimplificationError("direction grouping hit an undefined angle")
    fields, dur = _rebuild(sp, merge, keep_last=True)
    return _from_fields(fields, np.concatenate((dur, sp.dur[-1:])))


def simplify_by_amplitude(sp: Scanpath, tamp: float, tdur: float, strict: bool = False) -> Scanpath:
    """One amplitude-grouping pass (the reference's ``simlen``).

    With ``strict=False`` a lone short saccade is kept (the reference raises there).
    """
    s = sp.n_saccades
    if s < 1:
        return sp
    d = sp.dur
    can = (sp.rho[:-1] < tamp) & ((d[1:s] < tdur) | (d[: s - 1] < tdur))
    merge = _alternate_in_runs(can)
    last_visited = s == 1 or not merge[-1]
    last_short = bool(sp.rho[-1] < tamp) and bool((d[-1] < tdur) or (d[-2] < tdur))
    if not (last_visited and last_short) or (s == 1 and not strict):
        fields, dur = _rebuild(sp, merge, keep_last=True)
        return _from_fields(fields, np.concatenate((dur, d[-1:])))
    if s == 1:
        raise SimplificationError("amplitude grouping of a single short saccade")
    # The last saccade folds into the previous output vector (its start point is kept), and the
    # duration list gains d[s-2]: the reference's behaviour, kept for agreement.
    fields, dur = _rebuild(sp, merge, keep_last=False)
    lenx, leny = fields[2].copy(), fields[3].copy()
    lenx[-1] = sp.lenx[-2] + sp.lenx[-1]
    leny[-1] = sp.leny[-2] + sp.leny[-1]
    rho, theta = _polar(lenx[-1:], leny[-1:])
    fields[4] = np.concatenate((fields[4][:-1], theta))
    fields[5] = np.concatenate((fields[5][:-1], rho))
    fields[2], fields[3] = lenx, leny
    return _from_fields(fields, np.concatenate((dur, d[s - 2 : s - 1], d[-1:])))


def simplify(sp: Scanpath, tamp: float, tdir: float, tdur: float, strict: bool = False) -> Scanpath:
    """Group saccades until the number of durations stops changing.

    Args:
        sp: scanpath from :func:`make_scanpath`.
        tamp: amplitude threshold, pixels.
        tdir: direction threshold, degrees.
        tdur: duration threshold, seconds.
        strict: raise where the reference raises instead of keeping the lone saccade / clipping
            the cosine.

    Returns:
        The simplified scanpath.

    Raises:
        SimplificationError: only with ``strict=True``, where the reference implementation raises
            (a single remaining short saccade, or an angle whose cosine rounds past 1).
    """
    prev = sp.dur.shape[0]
    while True:
        sp = simplify_by_direction(sp, tdir, tdur, strict)
        sp = simplify_by_amplitude(sp, tamp, tdur, strict)
        if sp.dur.shape[0] == prev:
            return sp
        prev = sp.dur.shape[0]
