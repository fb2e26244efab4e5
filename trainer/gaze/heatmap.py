"""Fixation-duration-weighted Gaussian heatmaps on the image grid.

A heatmap is a (rows, cols) float64 grid covering the whole image; cell ``(r, c)`` has its centre at
image pixel ``((c + 0.5) * W / cols, (r + 0.5) * H / rows)``.  Each fixation adds a Gaussian of
standard deviation ``sigma`` (1 degree of visual angle when pixels-per-degree is known) weighted by
its duration.  The 2-D Gaussian is separable, so a whole map is one matrix product
``Gy.T @ diag(w) @ Gx`` of (fixations x rows) and (fixations x cols) factors: no per-pixel loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from trainer.arrays import FloatArray

Normalise = Literal["max", "sum", "none"]

#: Kernel width used when neither sigma nor pixels-per-degree is given: a fraction of the image's
#: shorter side (about one degree on a typical reading display).
DEFAULT_SIGMA_FRACTION = 0.03


def resolve_sigma(
    image_size: tuple[float, float], *, sigma_px: float | None = None, pixels_per_degree: float | None = None
) -> float:
    """Kernel standard deviation in image pixels.

    Args:
        image_size: (width, height) of the image in pixels.
        sigma_px: explicit sigma in pixels (wins if given).
        pixels_per_degree: image pixels per degree of visual angle; sigma = 1 degree.
    """
    if sigma_px is not None:
        if sigma_px <= 0:
            raise ValueError(f"sigma_px must be positive, got {sigma_px}")
        return float(sigma_px)
    if pixels_per_degree is not None:
        if pixels_per_degree <= 0:
            raise ValueError(f"pixels_per_degree must be positive, got {pixels_per_degree}")
        return float(pixels_per_degree)
    return DEFAULT_SIGMA_FRACTION * float(min(image_size))


def _axis_kernel(pos: FloatArray, extent: float, cells: int, sigma: float) -> FloatArray:
    """(n, cells) Gaussian weights of n positions along one axis."""
    centres = (np.arange(cells) + 0.5) * (extent / cells)
    return np.exp(-0.5 * ((centres[None, :] - pos[:, None]) / sigma) ** 2)


def normalise_map(hm: FloatArray, how: Normalise) -> FloatArray:
    """Scale a map (or a stack (..., rows, cols)) to max 1 or sum 1; all-zero maps stay zero."""
    if how == "none":
        return hm
    axes = (-2, -1)
    scale = hm.max(axis=axes, keepdims=True) if how == "max" else hm.sum(axis=axes, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(scale > 0, hm / np.where(scale > 0, scale, 1.0), 0.0)
    return out


def gaussian_heatmap(
    fixations: ArrayLike,
    image_size: tuple[float, float],
    grid: tuple[int, int] = (32, 32),
    *,
    sigma_px: float | None = None,
    pixels_per_degree: float | None = None,
    normalise: Normalise = "max",
) -> FloatArray:
    """Heatmap of one session's fixations.

    Args:
        fixations: (n, 3) x (px), y (px), duration (any unit; used as weight).  Fixations off the
            image still contribute their tails.
        image_size: (width, height) in image pixels.
        grid: (rows, cols) of the output; (32, 32) for moment features.
        sigma_px: kernel sigma in image pixels (default: 1 degree when ``pixels_per_degree`` is
            given, else :data:`DEFAULT_SIGMA_FRACTION` of the shorter side).
        pixels_per_degree: image pixels per degree of visual angle.
        normalise: "max" (peak 1, as the stored heatmap images of the paper), "sum" (a
            distribution) or "none" (duration-weighted density).

    Returns:
        (rows, cols) float64 heatmap; all zeros when there are no fixations.
    """
    fix = np.asarray(fixations, dtype=np.float64).reshape(-1, 3)
    rows, cols = grid
    width, height = float(image_size[0]), float(image_size[1])
    sigma = resolve_sigma((width, height), sigma_px=sigma_px, pixels_per_degree=pixels_per_degree)
    fix = fix[np.isfinite(fix).all(axis=1)]
    gx = _axis_kernel(fix[:, 0], width, cols, sigma)
    gy = _axis_kernel(fix[:, 1], height, rows, sigma)
    hm = (gy * fix[:, 2:3]).T @ gx
    return normalise_map(hm, normalise)


def case_heatmap(session_maps: Sequence[FloatArray] | FloatArray, normalise: Normalise = "max") -> FloatArray:
    """Aggregate the session heatmaps of one case (each session counts equally).

    Args:
        session_maps: (s, rows, cols) maps of the sessions on the case.
        normalise: normalisation of the result (see :func:`gaussian_heatmap`).

    Returns:
        (rows, cols) mean of the sum-normalised session maps, then normalised as requested.
    """
    stack = np.asarray(session_maps, dtype=np.float64)
    if stack.ndim != 3 or stack.shape[0] == 0:
        raise ValueError(f"session_maps must have shape (s>0, rows, cols), got {stack.shape}")
    return normalise_map(normalise_map(stack, "sum").mean(axis=0), normalise)
