"""Simulated readers' gaze for the demo: finished, labelled sessions on the synthetic cases.

Sessions come from ``trainer.synthetic.readers.simulate_session`` (numpy only), are converted to
the 18-column protocol samples as a viewer showing the image at 1:1 (identity viewport) would
record them, and are stored through ``store_frames``, the same path the WebSocket ingest uses.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.interchange import geometry
from server.models import Case, ReadingSession, SessionStatus, User
from server.reading.samples import COLUMN
from server.reading.schemas import FindingBox, SessionFinish
from server.reading.service import finish_session
from server.reading.store import FrameIn, store_frames
from trainer.arrays import FloatArray
from trainer.synthetic.images import SyntheticCase
from trainer.synthetic.readers import DEMO_READERS, ReaderProfile, simulate_session

logger = logging.getLogger(__name__)

SOURCE = "simulated"
#: Samples per stored frame, as a browser sending every 100 ms would group them.
FRAME_MS = 100.0


@dataclass(frozen=True)
class Viewport:
    """What the viewer showed: image size and window (identity transform: 1 image px = 1 CSS px)."""

    width: int
    height: int
    window_center: float
    window_width: float


def protocol_samples(samples: FloatArray, viewport: Viewport) -> FloatArray:
    """Simulated tracker samples as protocol samples under an identity viewport.

    Args:
        samples: ``(m, 4)`` ``t_ms, x, y, valid`` from ``simulate_session`` (x, y NaN when the eye
            was not tracked; valid 1 only when tracked and on the image).
        viewport: The image shown at zoom 1, top-left at screen (0, 0), screen = image size.

    Returns:
        ``(m, 18)`` float64 samples. Untracked samples have image and screen coordinates -1 and no
        valid/on-image flags; tracked samples off the image keep their coordinates, flagged valid
        but not on image; every sample is flagged tab-visible and eye gaze.
    """
    t, x, y, valid = (samples[:, i] for i in range(4))
    tracked = np.isfinite(x) & np.isfinite(y)
    identity = geometry.Viewport(
        zoom=1.0,
        img_left=0.0,
        img_top=0.0,
        screen_w=float(viewport.width),
        screen_h=float(viewport.height),
        wl_center=viewport.window_center,
        wl_width=viewport.window_width,
    )
    return geometry.build_samples(
        t, np.stack([x, y], axis=1), tracked, (viewport.width, viewport.height), identity, shown=valid > 0
    )


def split_frames(samples: FloatArray, frame_ms: float = FRAME_MS) -> list[FloatArray]:
    """Consecutive groups of samples spanning ``frame_ms`` each (``(k, 18)`` arrays, k >= 1)."""
    if samples.shape[0] == 0:
        return []
    slot = np.floor(samples[:, COLUMN["t_ms"]] / frame_ms).astype(np.int64)
    cuts = np.flatnonzero(np.diff(slot)) + 1
    return np.split(samples, cuts)


def _profile(username: str) -> ReaderProfile | None:
    return next((p for p in DEMO_READERS if p.name == username), None)


def missing_reader_gaze(
    session: Session, readers: Sequence[User], dataset_id: int, external_ids: set[str]
) -> bool:
    """Whether a demo reader still lacks its finished simulated session on one of ``external_ids``."""
    for reader in readers:
        if _profile(reader.username) is None:
            continue
        done = set(
            session.scalars(
                select(Case.external_id)
                .join(ReadingSession, ReadingSession.case_id == Case.id)
                .where(
                    Case.dataset_id == dataset_id,
                    ReadingSession.reader_id == reader.id,
                    ReadingSession.source == SOURCE,
                    ReadingSession.status == SessionStatus.finished,
                )
            )
        )
        if not external_ids <= done:
            return True
    return False


def seed_reader_gaze(
    session: Session, readers: Sequence[User], cases: Sequence[tuple[Case, SyntheticCase]]
) -> int:
    """Give each demo reader one finished, labelled simulated session per case (idempotent).

    Args:
        session: Open ORM session (the caller commits).
        readers: Demo reader accounts; those without a simulated profile of the same name are skipped.
        cases: Stored cases with the synthetic case each was made from.

    Returns:
        Sessions created.
    """
    created = 0
    for reader in readers:
        profile = _profile(reader.username)
        if profile is None:
            logger.warning("no simulated reader profile named %r; no demo gaze for it", reader.username)
            continue
        done = set(
            session.scalars(
                select(ReadingSession.case_id).where(
                    ReadingSession.reader_id == reader.id,
                    ReadingSession.source == SOURCE,
                    ReadingSession.status == SessionStatus.finished,
                )
            )
        )
        for case, synthetic in cases:
            if case.id in done or case.image is None:
                continue
            _read_case(session, reader, profile, case, synthetic)
            created += 1
    return created


def _read_case(
    session: Session, reader: User, profile: ReaderProfile, case: Case, synthetic: SyntheticCase
) -> None:
    image = case.image
    assert image is not None
    simulated = simulate_session(synthetic, profile, seed=case.id)
    viewport = Viewport(image.width, image.height, image.window_center, image.window_width)
    reading = ReadingSession(
        case_id=case.id,
        reader_id=reader.id,
        source=SOURCE,
        source_info={"profile": profile.name, "sample_rate_hz": profile.sample_rate_hz, "seed": case.id},
        display_info={"screen_w": image.width, "screen_h": image.height, "dpr": 1.0},
        status=SessionStatus.open,
    )
    session.add(reading)
    session.flush()
    frames = [
        FrameIn(reading.id, reader.id, seq, chunk)
        for seq, chunk in enumerate(split_frames(protocol_samples(simulated.samples, viewport)))
    ]
    results = store_frames(session, frames)
    refused = [r for r in results if not r.ok]
    if refused:
        raise RuntimeError(f"demo gaze for case {case.id} was refused: {refused[0].detail}")
    finish_session(
        session, reader, reading.id, _diagnosis(synthetic, np.random.default_rng([profile.seed, case.id]))
    )


def _diagnosis(synthetic: SyntheticCase, rng: np.random.Generator) -> SessionFinish:
    """The reference label with a plausible confidence and, for findings, their box."""
    box = None
    if synthetic.findings:
        x0, y0, x1, y1 = synthetic.findings[0].bbox
        box = FindingBox(x0=x0, y0=y0, x1=x1, y1=y1)
    return SessionFinish(
        label=synthetic.label, confidence=round(float(rng.uniform(0.6, 0.98)), 2), finding_box=box
    )
