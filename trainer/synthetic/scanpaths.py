"""Where a simulated reader looks: search paths over the breast and class-typical dwell on findings.

These functions produce fixation *targets* (image pixels) and durations; ``readers.py`` turns them
into a timed session with saccades, blinks and measurement noise.  Each function takes the random
generator of the session, so a session is deterministic given its seed.

Dwell patterns (positions relative to the finding centre ``c`` and its extent ``r``):

* ``round_mass``: few, long fixations close to the centre, an occasional look at the margin;
* ``spiculated_mass``: medium fixations circling the margin, every few steps out along a spicule;
* ``calcifications``: many short fixations hopping between points of the cluster;
* ``normal`` has no dwell: the reader completes a systematic search and re-checks a few places.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trainer.synthetic.images import Finding

#: Shortest and longest fixation the simulation produces, milliseconds.
MIN_FIXATION_MS = 150.0
MAX_FIXATION_MS = 600.0

#: Search patterns a reader may have.
SEARCH_PATTERNS: tuple[str, ...] = ("rows", "columns")

# Per class: fixation duration scale during dwell on the finding.
DWELL_DURATION_SCALE = {"round_mass": 1.6, "spiculated_mass": 1.0, "calcifications": 0.65}

# Grid used to find the tissue and to lay out systematic search.
_GRID = 12


@dataclass(frozen=True)
class Fixation:
    """One planned fixation: target in image pixels and duration in milliseconds."""

    x: float
    y: float
    duration_ms: float


def draw_durations(
    rng: np.random.Generator, n: int, mean_ms: float, std_ms: float, scale: float = 1.0
) -> np.ndarray:
    """Log-normal fixation durations with the given mean and std (times ``scale``), clipped.

    Returns:
        ``(n,)`` float64 milliseconds in ``[MIN_FIXATION_MS, MAX_FIXATION_MS]``.
    """
    mean, std = mean_ms * scale, std_ms * scale
    sigma2 = np.log1p((std / mean) ** 2)
    mu = np.log(mean) - sigma2 / 2.0
    return np.clip(rng.lognormal(mu, np.sqrt(sigma2), n), MIN_FIXATION_MS, MAX_FIXATION_MS)


def search_grid(image: np.ndarray, pattern: str) -> tuple[np.ndarray, float]:
    """Centres of the tissue cells of a coarse grid, in the order a systematic search visits them.

    Tissue is where the cell's mean is in the upper part of the image's range; air around the breast
    is skipped like a reader would.

    Args:
        image: ``(H, W)`` image.
        pattern: ``"rows"`` (left-right sweeps, top to bottom, alternating direction) or
            ``"columns"`` (up-down sweeps, from the left, alternating direction).

    Returns:
        ``(k, 2)`` float64 cell centres ``(x, y)`` in image pixels, and the cell size in pixels.
    """
    if pattern not in SEARCH_PATTERNS:
        raise ValueError(f"unknown search pattern {pattern!r}; expected one of {SEARCH_PATTERNS}")
    h, w = image.shape
    ch, cw = h / _GRID, w / _GRID
    row_starts = np.floor(np.arange(_GRID) * ch).astype(np.int64)
    col_starts = np.floor(np.arange(_GRID) * cw).astype(np.int64)
    sums = np.add.reduceat(np.add.reduceat(image.astype(np.float64), row_starts, axis=0), col_starts, axis=1)
    counts = np.diff(np.append(row_starts, h))[:, None] * np.diff(np.append(col_starts, w))[None, :]
    means = sums / counts
    lo, hi = float(np.percentile(image, 1)), float(np.percentile(image, 99))
    tissue = means > lo + 0.3 * (hi - lo)
    if not tissue.any():
        tissue[:] = True
    cells: list[tuple[float, float]] = []
    for i in range(_GRID):
        line = range(_GRID) if i % 2 == 0 else range(_GRID - 1, -1, -1)
        for j in line:
            r, c = (i, j) if pattern == "rows" else (j, i)
            if tissue[r, c]:
                cells.append(((c + 0.5) * cw - 0.5, (r + 0.5) * ch - 0.5))
    return np.asarray(cells, dtype=np.float64), float(min(ch, cw))


def sweep(rng: np.random.Generator, grid: np.ndarray, cell: float, n: int, start: float) -> np.ndarray:
    """``n`` search targets spread evenly along a systematic sweep.

    Args:
        rng: Session generator.
        grid: ``(k, 2)`` ordered cell centres from ``search_grid``.
        cell: Cell size in pixels, for the jitter.
        n: Number of targets.
        start: Where along the sweep to start, in ``[0, 1)``; the sweep wraps around.

    Returns:
        ``(n, 2)`` targets ``(x, y)``.
    """
    if n <= 0:
        return np.zeros((0, 2))
    k = len(grid)
    # Even coverage of the whole sweep whatever the time budget: stride through the ordered cells.
    pos = (start * k + np.arange(n) * (k / max(n, 1)) + rng.uniform(0, 1)) % k
    picked = grid[np.floor(pos).astype(np.int64)]
    return picked + rng.normal(0.0, 0.3 * cell, picked.shape)


def dwell(
    rng: np.random.Generator, finding: Finding, n: int, mean_ms: float, std_ms: float
) -> list[Fixation]:
    """``n`` class-typical fixations on a finding (see the module docstring)."""
    r = max(finding.radius, 2.0)
    scale = DWELL_DURATION_SCALE[finding.kind]
    durations = draw_durations(rng, n, mean_ms, std_ms, scale)
    if finding.kind == "round_mass":
        offsets = rng.normal(0.0, 0.2 * r, (n, 2))
        margin = rng.random(n) < 0.2
        angles = rng.uniform(0, 2 * np.pi, n)
        offsets[margin] = 0.9 * r * np.stack([np.cos(angles), np.sin(angles)], axis=1)[margin]
    elif finding.kind == "spiculated_mass":
        step = 2 * np.pi / rng.uniform(5.0, 8.0) * rng.choice([-1.0, 1.0])
        angles = rng.uniform(0, 2 * np.pi) + step * np.arange(n) + rng.normal(0, 0.15, n)
        # The margin of the core is about 45% of the extent; every third look follows a spicule out.
        radii = np.where(np.arange(n) % 3 == 2, 0.8 * r, 0.45 * r) * rng.uniform(0.85, 1.15, n)
        offsets = np.stack([np.cos(angles), np.sin(angles)], axis=1) * radii[:, None]
    elif finding.kind == "calcifications":
        offsets = _hops(rng, n, 0.9 * r)
    else:
        raise ValueError(f"no dwell pattern for finding kind {finding.kind!r}")
    return [
        Fixation(finding.cx + dx, finding.cy + dy, float(d))
        for (dx, dy), d in zip(offsets, durations, strict=True)
    ]


def _hops(rng: np.random.Generator, n: int, radius: float) -> np.ndarray:
    """``(n, 2)`` points in a disc, each at least ``radius / 3`` from the one before (a hop)."""
    points = np.zeros((n, 2))
    prev = np.array([np.inf, np.inf])
    for i in range(n):
        for _ in range(20):
            rho, phi = radius * np.sqrt(rng.random()), rng.uniform(0, 2 * np.pi)
            cand = np.array([rho * np.cos(phi), rho * np.sin(phi)])
            if np.hypot(*(cand - prev)) >= radius / 3.0:
                break
        points[i] = prev = cand
    return points


def conspicuity(image: np.ndarray, finding: Finding) -> float:
    """How visible a finding is: bright core against the surrounding tissue, mapped to ``[0, 1]``.

    Uses the 90th percentile inside the finding's disc against the median and spread of the ring
    around it, so both a faint mass and a cluster of tiny bright dots are judged fairly.
    """
    h, w = image.shape
    r = max(finding.radius, 2.0)
    half = int(2.2 * r) + 2
    r0, r1 = max(int(finding.cy) - half, 0), min(int(finding.cy) + half + 1, h)
    c0, c1 = max(int(finding.cx) - half, 0), min(int(finding.cx) + half + 1, w)
    patch = image[r0:r1, c0:c1].astype(np.float64)
    dist = np.hypot(np.arange(c0, c1)[None, :] - finding.cx, np.arange(r0, r1)[:, None] - finding.cy)
    inside, ring = patch[dist <= 0.6 * r], patch[(dist > 1.2 * r) & (dist <= 2.2 * r)]
    if inside.size == 0 or ring.size < 4:
        return 0.5
    z = (np.percentile(inside, 90) - np.median(ring)) / (np.std(ring) + 1e-9)
    return float(np.clip(z / 4.0, 0.0, 1.0))
