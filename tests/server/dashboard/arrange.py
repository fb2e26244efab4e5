"""Rows for dashboard tests written straight to the database (sessions, pairs, stored images)."""

from __future__ import annotations

from typing import Any

from server.db import Database
from server.models import Case, Dataset, Pair, ReadingSession, SessionStatus, StoredImage


def make_dataset(
    db: Database,
    name: str,
    n_cases: int,
    *,
    settings: dict[str, Any] | None = None,
    with_images: bool = False,
) -> tuple[int, list[int]]:
    """A dataset with ``n_cases`` cases (each with a stored-image row when ``with_images``)."""
    with db.session() as session:
        dataset = Dataset(name=name, label_set=["a", "b"], settings=settings or {})
        session.add(dataset)
        session.flush()
        ids = []
        for i in range(n_cases):
            case = Case(dataset_id=dataset.id, title=f"{name} case {i}", external_id=f"{name}-{i}")
            session.add(case)
            session.flush()
            if with_images:
                session.add(
                    StoredImage(
                        case_id=case.id,
                        format="png",
                        width=8,
                        height=8,
                        bits_stored=16,
                        photometric="MONOCHROME2",
                        value_offset=0.0,
                        value_scale=1.0,
                        window_center=1.0,
                        window_width=2.0,
                        sha256="0" * 64,
                        storage_dir=f"images/{case.id}",
                    )
                )
            ids.append(case.id)
        return dataset.id, ids


def add_session(
    db: Database,
    case_id: int,
    reader_id: int,
    *,
    source: str = "mouse",
    status: SessionStatus = SessionStatus.finished,
    info: dict[str, Any] | None = None,
    samples: int = 0,
) -> int:
    with db.session() as session:
        reading = ReadingSession(
            case_id=case_id,
            reader_id=reader_id,
            source=source,
            source_info=info or {},
            status=status,
            display_info={},
            sample_count=samples,
        )
        session.add(reading)
        session.flush()
        return reading.id


def add_pair(
    db: Database,
    dataset_id: int,
    a: int,
    b: int,
    score: float,
    *,
    positive: bool,
    metric: str = "moments",
    readers: int = 1,
) -> None:
    with db.session() as session:
        session.add(
            Pair(
                dataset_id=dataset_id,
                metric=metric,
                case_a_id=min(a, b),
                case_b_id=max(a, b),
                score=score,
                n_readers=readers,
                is_positive=positive,
            )
        )
