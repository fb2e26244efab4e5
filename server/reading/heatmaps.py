"""Gaze heatmaps of a session and of a case, from stored samples, computed with trainer.gaze.

The gaze analysis itself (fixation detection, Gaussian heatmaps, aggregation) lives in
``trainer.gaze``; this module only turns stored 18-column samples into its inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.exceptions import NotFound
from server.models import Case, ReadingSession, SessionStatus, User
from server.reading.samples import COLUMN, FLAG_ON_IMAGE, FLAG_VALID
from server.reading.service import session_samples
from trainer.arrays import FloatArray
from trainer.gaze import case_heatmap, detect_fixations, gaussian_heatmap
from trainer.gaze.fixations import DEFAULT_PX_PER_DEG, angular_positions, screen_pixels_per_degree


@dataclass(frozen=True)
class Heatmap:
    """A max-normalised heatmap over an image.

    Attributes:
        values: ``(size, size)`` float64, row-major (row = image y), peak 1 (all 0 without gaze).
        width, height: Image size in pixels.
        sessions: Sessions aggregated.
        samples: Valid on-image samples that went in.
    """

    values: FloatArray
    width: int
    height: int
    sessions: int
    samples: int


def gaze_samples(samples: FloatArray) -> FloatArray:
    """Image-space gaze in trainer.gaze's layout.

    Args:
        samples: ``(m, 18)`` stored samples.

    Returns:
        ``(m, 4)`` float64 ``t_ms, image_x, image_y, valid``, in time order; ``valid`` is 1 for
        samples flagged valid and on the image.
    """
    flags = samples[:, COLUMN["flags"]].astype(np.int64)
    valid = ((flags & FLAG_VALID) != 0) & ((flags & FLAG_ON_IMAGE) != 0)
    out = np.stack(
        [samples[:, COLUMN["t_ms"]], samples[:, COLUMN["image_x"]], samples[:, COLUMN["image_y"]], valid],
        axis=1,
    ).astype(np.float64)
    # Frames may arrive in any order and each is only ordered within itself.
    return out[np.argsort(out[:, 0], kind="stable")]


def display_pixels_per_degree(display_info: dict[str, Any] | None, fallback: float | None = None) -> float:
    """Screen (CSS) px per degree of a session: from its screen geometry (``screen_w`` px over
    ``screen_mm_w`` mm seen from ``distance_mm``), else ``fallback`` (the dataset's
    ``screen_pixels_per_degree``), else 35 (about 60 cm from a 96 dpi screen)."""
    info = display_info or {}

    def num(key: str) -> float | None:
        value = info.get(key)
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None

    measured = screen_pixels_per_degree(num("screen_w"), num("screen_mm_w"), num("distance_mm"))
    return measured or fallback or DEFAULT_PX_PER_DEG


def session_fixations(samples: FloatArray, pixels_per_degree: float) -> FloatArray:
    """(k, 3) fixations (image x, image y, duration s) of stored samples, detected in degrees of
    visual angle from each sample's screen position, so the zoom it was read at does not matter."""
    gaze = gaze_samples(samples)
    if gaze.shape[0] < 2 or gaze[:, 3].sum() < 2:
        return np.zeros((0, 3))
    ordered = samples[np.argsort(samples[:, COLUMN["t_ms"]], kind="stable")]  # gaze_samples' order
    angular = angular_positions(
        ordered[:, [COLUMN["screen_x"], COLUMN["screen_y"]]],
        ordered[:, [COLUMN["image_x"], COLUMN["image_y"]]],
        ordered[:, COLUMN["zoom"]],
        pixels_per_degree,
    )
    return detect_fixations(gaze, "ivt", angular=angular).fixations.scanpath()


def _session_map(
    samples: FloatArray, shape: tuple[int, int], size: int, pixels_per_degree: float = DEFAULT_PX_PER_DEG
) -> tuple[FloatArray, int]:
    gaze = gaze_samples(samples)
    n_valid = int(gaze[:, 3].sum())
    if n_valid < 2:
        return np.zeros((size, size), dtype=np.float64), n_valid
    fixations = session_fixations(samples, pixels_per_degree)
    h, w = shape
    return gaussian_heatmap(fixations, (w, h), (size, size), normalise="max"), n_valid


def _image_shape(session: Session, case_id: int) -> tuple[int, int]:
    case = session.get(Case, case_id)
    if case is None or case.image is None:
        raise NotFound(f"case {case_id} has no stored image")
    return case.image.height, case.image.width


def session_heatmap(session: Session, reading: ReadingSession, size: int) -> Heatmap:
    """The heatmap of one session."""
    h, w = _image_shape(session, reading.case_id)
    ppd = display_pixels_per_degree(reading.display_info)
    values, n = _session_map(session_samples(session, reading.id), (h, w), size, ppd)
    return Heatmap(values=values, width=w, height=h, sessions=1, samples=n)


def case_heatmap_for(session: Session, user: User, case_id: int, size: int) -> Heatmap:
    """The mean of the session heatmaps on a case that ``user`` may see (admins: every reader's).

    Aborted sessions are left out; open ones count with what they have so far.
    """
    h, w = _image_shape(session, case_id)
    query = select(ReadingSession.id, ReadingSession.display_info).where(
        ReadingSession.case_id == case_id, ReadingSession.status != SessionStatus.aborted
    )
    if not user.is_admin:
        query = query.where(ReadingSession.reader_id == user.id)
    maps, total = [], 0
    for session_id, display in session.execute(query.order_by(ReadingSession.id)):
        ppd = display_pixels_per_degree(display)
        values, n = _session_map(session_samples(session, session_id), (h, w), size, ppd)
        if n:
            maps.append(values)
            total += n
    values = case_heatmap(maps) if maps else np.zeros((size, size), dtype=np.float64)
    return Heatmap(values=values, width=w, height=h, sessions=len(maps), samples=total)
