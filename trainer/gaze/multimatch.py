"""MultiMatch scanpath similarity (Jarodzka et al. 2010; Dewhurst et al. 2012), vectorised.

Values agree with the reference package ``multimatch-gaze`` 0.1.3 (``docomparison``): the same
saccade-vector representation and simplification (:mod:`trainer.gaze.scanpath`), the same cheapest
alignment path (:mod:`trainer.gaze.alignment`, including the reference's tie-breaking), and the same
five medians along that path, normalised the same way.  Many pairs are scored together in one
batched alignment, which is where the speed comes from.

Where the reference does not give a number we return one and say which:

* fewer than 3 fixations in either scanpath: ``nan`` for all five measures (as the reference);
* grouping that the reference cannot finish (it raises ``IndexError`` when amplitude grouping would
  fold the only remaining saccade, and ``ValueError`` when rounding puts the cosine of two parallel
  saccades past 1): the lone saccade is kept, and the cosine is clipped to ``[-1, 1]``; pass
  ``strict=True`` to :func:`multimatch` to raise :class:`SimplificationError` there instead;
* two aligned fixations both of zero duration (the reference divides 0 by 0): their duration
  difference counts as 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from trainer.arrays import FloatArray
from trainer.gaze.alignment import align_batch, dijkstra_path
from trainer.gaze.scanpath import Scanpath, SimplificationError, make_scanpath, simplify

#: Names of the five measures, in the order :func:`multimatch` returns them.
MEASURES: tuple[str, ...] = ("vector", "direction", "length", "position", "duration")

#: Default weights of :func:`combined_score` (shape, direction, length, position, duration).  Position
#: and shape carry most of "looked at the same places in the same way"; duration is the noisiest
#: measure on webcam data, so it counts least.
DEFAULT_COMBINED_WEIGHTS: tuple[float, float, float, float, float] = (0.25, 0.15, 0.15, 0.35, 0.10)

# Float64 elements of one batched alignment table (8 MiB): big enough to amortise numpy calls,
# small enough to stay in cache.
_BLOCK_ELEMENTS = 1_000_000

__all__ = [
    "DEFAULT_COMBINED_WEIGHTS",
    "MEASURES",
    "SimplificationError",
    "combined_score",
    "multimatch",
    "multimatch_many",
    "multimatch_indexed",
    "prepare_scanpath",
    "stack_scanpaths",
]


def prepare_scanpath(
    fixations: ArrayLike,
    *,
    grouping: bool = False,
    tdir: float = 0.0,
    tdur: float = 0.0,
    tamp: float = 0.0,
    strict: bool = False,
) -> Scanpath | None:
    """Saccade-vector scanpath of a fixation sequence, simplified when ``grouping`` is on.

    Computing this once per session and reusing it for every pair is what makes pair mining cheap.

    Args:
        fixations: (n, 3) x (px), y (px), duration (s).
        grouping: Simplify with the thresholds below (the reference's ``grouping``).
        tdir: Direction threshold, degrees.
        tdur: Duration threshold, seconds.
        tamp: Amplitude threshold, pixels.
        strict: Raise :class:`SimplificationError` where the reference raises.

    Returns:
        The scanpath, or ``None`` when there are fewer than 3 fixations (not comparable).
    """
    fix = np.asarray(fixations, dtype=np.float64)
    if fix.ndim != 2 or fix.shape[1] != 3:
        raise ValueError(f"fixations must have shape (n, 3), got {fix.shape}")
    if fix.shape[0] < 3:
        return None
    sp = make_scanpath(fix)
    if grouping:
        sp = simplify(sp, tamp=tamp, tdir=tdir, tdur=tdur, strict=strict)
    return sp


@dataclass(frozen=True)
class StackedScanpaths:
    """Many scanpaths as zero-padded (U, W) arrays, built once and indexed per pair.

    Attributes:
        n: (U,) saccade counts.
        fields: (7, U, W) x, y, lenx, leny, theta, rho, duration of each saccade.
    """

    n: NDArray[np.int64]
    fields: FloatArray


def stack_scanpaths(paths: Sequence[Scanpath]) -> StackedScanpaths:
    """Stack prepared scanpaths (each with >= 1 saccade) for :func:`multimatch_indexed`."""
    n = np.array([sp.n_saccades for sp in paths], dtype=np.int64)
    width = int(n.max()) if n.size else 1
    fields = np.zeros((7, len(paths), width))
    for r, sp in enumerate(paths):
        s = sp.n_saccades
        fields[:6, r, :s] = np.stack((sp.x, sp.y, sp.lenx, sp.leny, sp.theta, sp.rho))
        fields[6, r, :s] = sp.dur[:s]
    return StackedScanpaths(n, fields)


def _wrap_angle(theta: FloatArray) -> FloatArray:
    # The reference maps (-pi, 0) to (pi, 2 pi) as pi + (pi + t); same operations, same rounding.
    return np.where(theta < 0, math.pi + (math.pi + theta), theta)


def _masked_median(values: FloatArray, length: NDArray[np.int64]) -> FloatArray:
    """Median of the first ``length[r]`` entries of each row of ``values`` (P, L)."""
    cols = np.arange(values.shape[1])
    v = np.where(cols[None, :] < length[:, None], values, np.inf)
    v.sort(axis=1)
    rows = np.arange(values.shape[0])
    lo = v[rows, (length - 1) // 2]
    hi = v[rows, length // 2]
    return (lo + hi) / 2.0


def _score_block(
    fa: FloatArray, na: NDArray[np.int64], fb: FloatArray, nb: NDArray[np.int64], diag: float
) -> FloatArray:
    """Five measures for P pairs given their padded fields (7, P, n) and (7, P, m). Returns (P, 5)."""
    ax, ay, alx, aly, ath, arho, adur = fa
    bx, by, blx, bly, bth, brho, bdur = fb
    pi, pj, length, tie = align_batch(alx, aly, na, blx, bly, nb)
    for r in np.flatnonzero(tie):
        # An exact tie on the path: let the reference's own graph search pick, for equal values.
        cost = np.sqrt(
            (alx[r, : na[r], None] - blx[r, None, : nb[r]]) ** 2
            + (aly[r, : na[r], None] - bly[r, None, : nb[r]]) ** 2
        )
        cells = dijkstra_path(cost)[::-1]
        pi[r, :] = -1
        pj[r, :] = -1
        pi[r, : cells.shape[0]] = cells[:, 0]
        pj[r, : cells.shape[0]] = cells[:, 1]
        length[r] = cells.shape[0]
    valid = pi >= 0
    rows = np.arange(pi.shape[0])[:, None]
    ga = fa[:, rows, np.where(valid, pi, 0)]  # (7, P, L) fields of a along the path
    gb = fb[:, rows, np.where(valid, pj, 0)]
    vec = np.sqrt((ga[2] - gb[2]) ** 2 + (ga[3] - gb[3]) ** 2)
    ang = np.abs(_wrap_angle(ga[4]) - _wrap_angle(gb[4]))
    ang = np.where(ang > math.pi, 2 * math.pi - ang, ang)
    lend = np.abs(ga[5] - gb[5])
    pos = np.sqrt((ga[0] - gb[0]) ** 2 + (ga[1] - gb[1]) ** 2)
    big = np.maximum(ga[6], gb[6])
    with np.errstate(invalid="ignore", divide="ignore"):
        dur = np.where(big > 0, np.abs(ga[6] - gb[6]) / np.where(big > 0, big, 1.0), 0.0)
    med = np.stack([_masked_median(q, length) for q in (vec, ang, lend, pos, dur)], axis=1)
    return np.stack(
        (
            1 - med[:, 0] / (2 * diag),
            1 - med[:, 1] / math.pi,
            1 - med[:, 2] / diag,
            1 - med[:, 3] / diag,
            1 - med[:, 4],
        ),
        axis=1,
    )


def multimatch_indexed(
    sa: StackedScanpaths,
    ia: NDArray[np.integer],
    sb: StackedScanpaths,
    ib: NDArray[np.integer],
    screensize: Sequence[float],
) -> FloatArray:
    """MultiMatch for pairs ``(sa[ia[r]], sb[ib[r]])`` of stacked scanpaths.

    Pairs are grouped by size so that padding stays small, and aligned in blocks of bounded memory
    (about ``_BLOCK_ELEMENTS`` float64 per block).

    Args:
        sa, sb: Stacks from :func:`stack_scanpaths`.
        ia, ib: (P,) row indices into ``sa`` and ``sb``.
        screensize: (width, height) in pixels, for normalisation.

    Returns:
        (P, 5) float64 measures in :data:`MEASURES` order.
    """
    ia = np.asarray(ia, dtype=np.int64)
    ib = np.asarray(ib, dtype=np.int64)
    out = np.empty((ia.shape[0], 5))
    if ia.size == 0:
        return out
    diag = math.sqrt(float(screensize[0]) ** 2 + float(screensize[1]) ** 2)
    na, nb = sa.n[ia], sb.n[ib]
    # Coarse buckets of the first length, then the second: neighbours have similar grids.
    order = np.lexsort((nb, na // 8))
    na_s, nb_s = na[order], nb[order]
    start = 0
    while start < order.size:
        n_max, m_max = int(na_s[start]), int(nb_s[start])
        stop = start + 1
        # Grow the block while the padded working set of every pair in it fits the budget.
        while stop < order.size:
            n2, m2 = max(n_max, int(na_s[stop])), max(m_max, int(nb_s[stop]))
            if (stop + 1 - start) * (n2 + 1) * (n2 + m2 + 1) > _BLOCK_ELEMENTS:
                break
            n_max, m_max, stop = n2, m2, stop + 1
        sel = order[start:stop]
        fa = sa.fields[:, ia[sel], :n_max]
        fb = sb.fields[:, ib[sel], :m_max]
        out[sel] = _score_block(fa, na[sel], fb, nb[sel], diag)
        start = stop
    return out


def multimatch_many(
    a: Sequence[Scanpath | None],
    b: Sequence[Scanpath | None],
    screensize: Sequence[float],
) -> FloatArray:
    """MultiMatch for many pairs of prepared scanpaths at once: row ``r`` compares ``a[r], b[r]``.

    Args:
        a, b: Equal-length sequences from :func:`prepare_scanpath` (``None`` = too short).
        screensize: (width, height) in pixels, for normalisation.

    Returns:
        (P, 5) float64 measures in :data:`MEASURES` order; ``nan`` rows where either is ``None``.
    """
    if len(a) != len(b):
        raise ValueError(f"a and b must have the same length, got {len(a)} and {len(b)}")
    out = np.full((len(a), 5), np.nan)
    ok = [r for r in range(len(a)) if a[r] is not None and b[r] is not None]
    if not ok:
        return out
    # Stack each distinct scanpath object once, however many pairs it is in.
    uniq: dict[int, int] = {}
    paths: list[Scanpath] = []
    idx = np.empty((2, len(ok)), dtype=np.int64)
    for k, r in enumerate(ok):
        for side, sp in enumerate((a[r], b[r])):
            key = id(sp)
            if key not in uniq:
                uniq[key] = len(paths)
                paths.append(sp)  # type: ignore[arg-type]
            idx[side, k] = uniq[key]
    st = stack_scanpaths(paths)
    out[ok] = multimatch_indexed(st, idx[0], st, idx[1], screensize)
    return out


def multimatch(
    a: ArrayLike,
    b: ArrayLike,
    screensize: Sequence[float],
    *,
    grouping: bool = False,
    tdir: float = 0.0,
    tdur: float = 0.0,
    tamp: float = 0.0,
    strict: bool = False,
) -> FloatArray:
    """Compare two scanpaths on the five MultiMatch dimensions.

    Same inputs, order and values as ``multimatch_gaze.docomparison`` (within 1e-6), including
    which alignment path is chosen when several are equally cheap.

    Args:
        a, b: (n, 3) float arrays of fixations: x (px), y (px), duration (s).
        screensize: (width, height) of the stimulus in pixels.
        grouping: Simplify both scanpaths first (direction and amplitude grouping).
        tdir: Direction threshold for grouping, degrees.
        tdur: Duration threshold for grouping, seconds.
        tamp: Amplitude threshold for grouping, pixels.
        strict: Raise :class:`SimplificationError` where the reference raises, instead of the
            documented fallback (keep a lone short saccade, clip cosines to [-1, 1]).

    Returns:
        (5,) float64: vector (shape), direction, length, position, duration similarity; 1 means
        identical.  All ``nan`` when either scanpath has fewer than 3 fixations.
    """
    kw = {"grouping": grouping, "tdir": tdir, "tdur": tdur, "tamp": tamp, "strict": strict}
    pa, pb = prepare_scanpath(a, **kw), prepare_scanpath(b, **kw)  # type: ignore[arg-type]
    return multimatch_many([pa], [pb], screensize)[0]


def combined_score(
    measures: ArrayLike, weights: Sequence[float] = DEFAULT_COMBINED_WEIGHTS
) -> FloatArray | float:
    """Weighted mean of MultiMatch measures, clipped to [0, 1]; ``nan`` rows score 0.

    Args:
        measures: (..., 5) output of :func:`multimatch` / :func:`multimatch_many`.
        weights: Five non-negative weights in :data:`MEASURES` order (normalised here).

    Returns:
        (...) float64 scores (a float for a single (5,) input).
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (5,) or (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"weights must be 5 non-negative numbers with a positive sum, got {weights!r}")
    m = np.asarray(measures, dtype=np.float64)
    s = np.clip(m @ (w / w.sum()), 0.0, 1.0)
    s = np.where(np.isnan(s), 0.0, s)
    return float(s) if s.ndim == 0 else s
