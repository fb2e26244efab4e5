"""Building 18-column samples from imported gaze: image positions plus the display state.

Public datasets describe where the image was on the screen (EGD-CXR: margins around the image on
a 1920x1080 screen; REFLACX: the shown part of the image and where it was drawn). That state maps
onto the viewer columns of a sample: ``zoom`` (image px -> screen px), ``img_*`` (the full image
rectangle on the screen) and ``screen_*``, so imported samples carry their viewport like recorded
ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from server.reading.samples import (
    COLUMN,
    FLAG_EYE,
    FLAG_ON_IMAGE,
    FLAG_VALID,
    FLAG_VISIBLE,
    N_COLUMNS,
    FloatArray,
)


@dataclass(frozen=True)
class Viewport:
    """The display state of samples, broadcastable per sample.

    Attributes:
        zoom: Image px -> screen px scale (x), scalar or ``(n,)``.
        img_left, img_top: Screen position of the image's top-left corner (screen px).
        screen_w, screen_h: Screen size (px).
        wl_center, wl_width: Window centre and width (modality units).
    """

    zoom: float | FloatArray
    img_left: float | FloatArray
    img_top: float | FloatArray
    screen_w: float
    screen_h: float
    wl_center: float | FloatArray
    wl_width: float | FloatArray
    #: Vertical scale where it differs from ``zoom`` (EGD-CXR stretched its images slightly).
    zoom_y: float | FloatArray | None = None


def build_samples(
    t_ms: FloatArray,
    image_xy: FloatArray,
    valid: NDArray[np.bool_],
    image_size: tuple[float | FloatArray, float | FloatArray],
    view: Viewport,
    *,
    eye_gaze: bool = True,
    shown: NDArray[np.bool_] | None = None,
) -> FloatArray:
    """Samples from image positions.

    Args:
        t_ms: ``(n,)`` session-relative times (ms).
        image_xy: ``(n, 2)`` image pixel coordinates (x = column, y = row); ignored where not valid.
        valid: ``(n,)`` whether the tracker had a gaze point.
        image_size: ``(width, height)`` of the case image (scalars, or ``(n,)`` when samples of
            several images are built together).
        view: Display state.
        eye_gaze: Set flag bit 8 (eye gaze, not mouse or replay).
        shown: ``(n,)`` whether the point was inside the part of the image shown on screen
            (defaults to inside the image).

    Returns:
        ``(n, 18)`` samples (the ``zoom`` column holds the x scale; the y scale is
        ``img_height`` / image height); invalid samples have screen and image coordinates -1 and no valid or
        on-image flag; off-image samples keep their coordinates and lack the on-image flag.
    """
    n = t_ms.shape[0]
    width, height = image_size
    out = np.zeros((n, N_COLUMNS), dtype=np.float64)
    x = np.where(valid, image_xy[:, 0], -1.0)
    y = np.where(valid, image_xy[:, 1], -1.0)
    zoom = np.broadcast_to(np.asarray(view.zoom, dtype=np.float64), (n,))
    zoom_y = zoom if view.zoom_y is None else np.broadcast_to(np.asarray(view.zoom_y, dtype=np.float64), (n,))
    left = np.broadcast_to(np.asarray(view.img_left, dtype=np.float64), (n,))
    top = np.broadcast_to(np.asarray(view.img_top, dtype=np.float64), (n,))
    on_image = valid & (x >= 0) & (x < width) & (y >= 0) & (y < height)
    if shown is not None:
        on_image &= shown
    flags = FLAG_VISIBLE + np.where(valid, FLAG_VALID, 0) + np.where(on_image, FLAG_ON_IMAGE, 0)
    if eye_gaze:
        flags = flags + FLAG_EYE
    out[:, COLUMN["t_ms"]] = t_ms
    out[:, COLUMN["screen_x"]] = np.where(valid, left + x * zoom, -1.0)
    out[:, COLUMN["screen_y"]] = np.where(valid, top + y * zoom_y, -1.0)
    out[:, COLUMN["image_x"]] = x
    out[:, COLUMN["image_y"]] = y
    out[:, COLUMN["flags"]] = flags
    out[:, COLUMN["zoom"]] = zoom
    out[:, COLUMN["pan_x"]] = left
    out[:, COLUMN["pan_y"]] = top
    out[:, COLUMN["wl_center"]] = np.broadcast_to(np.asarray(view.wl_center, dtype=np.float64), (n,))
    out[:, COLUMN["wl_width"]] = np.broadcast_to(np.asarray(view.wl_width, dtype=np.float64), (n,))
    out[:, COLUMN["img_left"]] = left
    out[:, COLUMN["img_top"]] = top
    out[:, COLUMN["img_width"]] = width * zoom
    out[:, COLUMN["img_height"]] = height * zoom_y
    out[:, COLUMN["screen_w"]] = view.screen_w
    out[:, COLUMN["screen_h"]] = view.screen_h
    out[:, COLUMN["dpr"]] = 1.0
    return out


def expand_fixations(
    start_ms: FloatArray, duration_ms: FloatArray, hz: float
) -> tuple[FloatArray, NDArray[np.int64]]:
    """Sample times covering each fixation, for storing fixation lists as gaze samples.

    Each fixation becomes samples at ``start, start + 1000/hz, ...`` plus one at its end, so the
    stored samples span exactly the fixation's duration (dwell time survives the conversion).

    Args:
        start_ms: ``(m,)`` fixation starts (ms).
        duration_ms: ``(m,)`` non-negative durations (ms).
        hz: Sampling rate of the expansion.

    Returns:
        ``(n,)`` times and ``(n,)`` index of the fixation each time belongs to.
    """
    if hz <= 0:
        raise ValueError(f"fixation expansion rate must be > 0 Hz, got {hz}")
    step = 1000.0 / hz
    counts = np.floor(duration_ms / step).astype(np.int64) + 1
    owner = np.repeat(np.arange(start_ms.shape[0], dtype=np.int64), counts)
    first = np.cumsum(counts) - counts
    k = np.arange(owner.shape[0], dtype=np.int64) - np.repeat(first, counts)
    times = start_ms[owner] + k * step
    # Close each fixation with a sample at its exact end (unless the grid already landed on it).
    end = start_ms + duration_ms
    needs_end = end - (start_ms + (counts - 1) * step) > 1e-9
    if needs_end.any():
        times = np.concatenate([times, end[needs_end]])
        owner = np.concatenate([owner, np.flatnonzero(needs_end).astype(np.int64)])
        order = np.lexsort((times, owner))
        times, owner = times[order], owner[order]
    return times, owner
