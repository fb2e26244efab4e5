"""Gaze heatmaps of a session and of a case, from stored samples, computed with trainer.gaze.

The gaze analysis itself (fixation detection, Gaussian heatmaps, aggregation) lives in
``trainer.gaze``; this module only turns stored 18-column samples into its inputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.models import Case, ReadingSession, SessionStatus, User
from server.reading.samples import COLUMN, FLAG_ON_IMAGE, FLAG_VALID, FloatArray
from server.reading.service import session_samples
from trainer.gaze import case_heatmap, detect_fixations, gaussian_heatmap


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


def _session_map(samples: FloatArray, shape: tuple[int, int], size: int) -> tuple[FloatArray, int]:
    gaze = gaze_samples(samples)
    n_valid = int(gaze[:, 3].sum())
    if n_valid < 2:
        return np.zeros((size, size), dtype=np.float64), n_valid
    fixations = detect_fixations(gaze).fixations.scanpath()
    h, w = shape
    return gaussian_heatmap(fixations, (w, h), (size, size), normalise="max"), n_valid


def _image_shape(session: Session, case_id: int) -> tuple[int, int]:
    case = session.get(Case, case_id)
    if case is None or case.image is None:
        raise LookupError(f"case {case_id} has no stored image")
    return case.image.height, case.image.width


def session_heatmap(session: Session, reading: ReadingSession, size: int) -> Heatmap:
    """The heatmap of one session."""
    h, w = _image_shape(session, reading.case_id)
    values, n = _session_map(session_samples(session, reading.id), (h, w), size)
    return Heatmap(values=values, width=w, height=h, sessions=1, samples=n)


def case_heatmap_for(session: Session, user: User, case_id: int, size: int) -> Heatmap:
    """The mean of the session heatmaps on a case that ``user`` may see (admins: every reader's).

    Aborted sessions are left out; open ones count with what they have so far.
    """
    h, w = _image_shape(session, case_id)
    query = select(ReadingSession.id).where(
        ReadingSession.case_id == case_id, ReadingSession.status != SessionStatus.aborted
    )
    if not user.is_admin:
        query = query.where(ReadingSession.reader_id == user.id)
    maps, total = [], 0
    for session_id in session.scalars(query.order_by(ReadingSession.id)):
        values, n = _session_map(session_samples(session, session_id), (h, w), size)
        if n:
            maps.append(values)
            total += n
    values = case_heatmap(maps) if maps else np.zeros((size, size), dtype=np.float64)
    return Heatmap(values=values, width=w, height=h, sessions=len(maps), samples=total)
