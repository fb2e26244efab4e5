"""Queries behind the dashboard's gaze and pair panels (read only).

Counts are aggregated in SQL; only per-session calibration values and pair scores are fetched as
columns and binned here. Nothing is recomputed from gaze samples: pairs come from the worker's pair
graph, calibration from what the gaze source recorded in ``source_info``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import Select, case, distinct, func, select, union_all
from sqlalchemy.orm import Session

from server.dashboard.histograms import count_buckets, error_histogram, histogram, quantile
from server.dashboard.schemas import (
    CalibrationStats,
    CasePositives,
    CaseSessions,
    CountBucket,
    GazeStats,
    GazeTotals,
    LabelPrecision,
    PairCoverage,
    PairStats,
    ReaderSessions,
    SourceSessions,
)
from server.datasets.settings import DatasetSettings
from server.datasets.snapshot import evaluation_labels, label_target
from server.exceptions import NotFound
from server.models import Case, Dataset, Pair, ReadingSession, SessionStatus, User
from trainer.protocol.labels import FindingTarget

#: Where gaze sources record their validation (calibration) error in ``source_info``, in screen px:
#: a top-level key any source may set, and the webcam calibration's validation result.
CALIBRATION_KEY = "validation_error_px"
WEBCAM_VALIDATION_PATH = ("calibration", "validation", "mean_px")
SIMILARITY_BINS = 20
_Stmt = TypeVar("_Stmt", bound=Select)
CALIBRATION_BINS = 12


def _dataset(session: Session, dataset_id: int) -> Dataset:
    dataset = session.get(Dataset, dataset_id)
    if dataset is None:
        raise NotFound(f"dataset {dataset_id} not found")
    return dataset


def _in_scope(stmt: _Stmt, dataset_id: int | None) -> _Stmt:
    """Restrict a statement over ``reading_sessions`` to sessions on cases of ``dataset_id``."""
    if dataset_id is None:
        return stmt
    return stmt.join(Case, Case.id == ReadingSession.case_id).where(Case.dataset_id == dataset_id)


def _finite_non_negative(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) and number >= 0 else None


def calibration_error(source_info: dict[str, Any] | None) -> float | None:
    """The recorded validation error in px (``validation_error_px``, else the webcam calibration's
    ``calibration.validation.mean_px``), if present and a finite non-negative number."""
    if not isinstance(source_info, dict):
        return None
    direct = _finite_non_negative(source_info.get(CALIBRATION_KEY))
    if direct is not None:
        return direct
    node: object = source_info
    for key in WEBCAM_VALIDATION_PATH:
        node = node.get(key) if isinstance(node, dict) else None
    return _finite_non_negative(node)


def _by_reader(session: Session, dataset_id: int | None) -> list[ReaderSessions]:
    finished = func.sum(case((ReadingSession.status == SessionStatus.finished, 1), else_=0))
    stmt = (
        select(
            ReadingSession.reader_id,
            User.username,
            func.count(ReadingSession.id),
            finished,
            func.count(distinct(ReadingSession.case_id)),
            func.coalesce(func.sum(ReadingSession.sample_count), 0),
        )
        .join(User, User.id == ReadingSession.reader_id)
        .group_by(ReadingSession.reader_id, User.username)
        .order_by(User.username)
    )
    return [
        ReaderSessions(
            reader_id=rid,
            username=name,
            sessions=n,
            finished=int(done or 0),
            cases=cases,
            samples=int(samples),
        )
        for rid, name, n, done, cases, samples in session.execute(_in_scope(stmt, dataset_id))
    ]


def _by_case(session: Session, dataset_id: int | None) -> list[CaseSessions]:
    """Every case in scope with its session counts (cases never read included, with zeros)."""
    finished = func.sum(case((ReadingSession.status == SessionStatus.finished, 1), else_=0))
    stmt = (
        select(
            Case.id,
            Case.title,
            func.count(ReadingSession.id),
            finished,
            func.count(distinct(ReadingSession.reader_id)),
        )
        .outerjoin(ReadingSession, ReadingSession.case_id == Case.id)
        .group_by(Case.id, Case.title)
    )
    if dataset_id is not None:
        stmt = stmt.where(Case.dataset_id == dataset_id)
    return [
        CaseSessions(case_id=cid, title=title, sessions=n, finished=int(done or 0), readers=readers)
        for cid, title, n, done, readers in session.execute(stmt)
    ]


def _sources_and_calibration(
    session: Session, dataset_id: int | None
) -> tuple[list[SourceSessions], CalibrationStats]:
    stmt = _in_scope(select(ReadingSession.source, ReadingSession.source_info), dataset_id)
    per_source: dict[str, list[float]] = {}
    sessions: dict[str, int] = {}
    errors: list[float] = []
    for source, info in session.execute(stmt):
        sessions[source] = sessions.get(source, 0) + 1
        error = calibration_error(info)
        if error is not None:
            per_source.setdefault(source, []).append(error)
            errors.append(error)
    sources = [
        SourceSessions(
            source=name,
            sessions=n,
            calibrated=len(per_source.get(name, [])),
            median_error_px=quantile(per_source.get(name, []), 0.5),
        )
        for name, n in sorted(sessions.items(), key=lambda item: (-item[1], item[0]))
    ]
    calibration = CalibrationStats(
        key=CALIBRATION_KEY,
        sessions_with=len(errors),
        sessions_without=sum(sessions.values()) - len(errors),
        mean=sum(errors) / len(errors) if errors else None,
        median=quantile(errors, 0.5),
        p90=quantile(errors, 0.9),
        histogram=error_histogram(errors, CALIBRATION_BINS),
    )
    return sources, calibration


def gaze_stats(session: Session, dataset_id: int | None = None, *, limit: int = 50) -> GazeStats:
    """Reading sessions per reader and case, gaze sources and calibration accuracy.

    Args:
        session: database session.
        dataset_id: restrict to one dataset (None: every dataset).
        limit: most-read cases listed in ``by_case``.

    Raises:
        NotFound: an unknown dataset.
    """
    if dataset_id is not None:
        _dataset(session, dataset_id)
    status_counts = select(ReadingSession.status, func.count()).group_by(ReadingSession.status)
    by_status: dict[SessionStatus, int] = {
        state: int(n) for state, n in session.execute(_in_scope(status_counts, dataset_id))
    }
    by_reader = _by_reader(session, dataset_id)
    by_case = _by_case(session, dataset_id)
    sources, calibration = _sources_and_calibration(session, dataset_id)
    totals = GazeTotals(
        sessions=sum(by_status.values()),
        open=by_status.get(SessionStatus.open, 0),
        finished=by_status.get(SessionStatus.finished, 0),
        aborted=by_status.get(SessionStatus.aborted, 0),
        readers=len(by_reader),
        cases=len(by_case),
        cases_read=sum(1 for c in by_case if c.finished > 0),
        samples=sum(r.samples for r in by_reader),
    )
    most_read = sorted(by_case, key=lambda c: (-c.sessions, c.case_id))[:limit]
    return GazeStats(
        dataset_id=dataset_id,
        totals=totals,
        by_reader=by_reader,
        by_case=most_read,
        cases_by_sessions=count_buckets(c.sessions for c in by_case),
        sources=sources,
        calibration=calibration,
    )


def _case_degrees(session: Session, dataset_id: int, metric: str, *, positive_only: bool) -> dict[int, int]:
    """Case id -> number of pairs (positive pairs with ``positive_only``) it belongs to."""
    conditions = [Pair.dataset_id == dataset_id, Pair.metric == metric]
    if positive_only:
        conditions.append(Pair.is_positive.is_(True))
    ends = union_all(
        select(Pair.case_a_id.label("case_id")).where(*conditions),
        select(Pair.case_b_id.label("case_id")).where(*conditions),
    ).subquery()
    rows = session.execute(select(ends.c.case_id, func.count()).group_by(ends.c.case_id))
    return {int(cid): int(n) for cid, n in rows}


def pair_stats(session: Session, dataset_id: int, metric: str | None = None, *, limit: int = 20) -> PairStats:
    """The dataset's gaze pair graph: similarity histogram, positives per case and coverage.

    Args:
        session: database session.
        dataset_id: the dataset.
        metric: pair metric (default: the dataset's).
        limit: cases listed in ``top_cases``.

    Raises:
        NotFound: an unknown dataset.
    """
    dataset = _dataset(session, dataset_id)
    settings = DatasetSettings.stored(dataset.settings, dataset_id=dataset.id)
    metric, threshold = metric or settings.metric, settings.threshold
    in_graph = (Pair.dataset_id == dataset_id, Pair.metric == metric)
    scored = session.execute(select(Pair.score, Pair.is_positive).where(*in_graph)).all()
    scores = [float(s) for s, _ in scored]
    positive_scores = [float(s) for s, positive in scored if positive]
    lo = min(0.0, math.floor(min(scores))) if scores else 0.0
    hi = max(1.0, math.ceil(max(scores))) if scores else 1.0
    readers = session.execute(
        select(Pair.n_readers, func.count()).where(*in_graph).group_by(Pair.n_readers)
    ).all()
    positives = _case_degrees(session, dataset_id, metric, positive_only=True)
    any_pair = _case_degrees(session, dataset_id, metric, positive_only=False)
    cases = session.execute(select(Case.id, Case.title).where(Case.dataset_id == dataset_id)).all()
    titles = {int(cid): title for cid, title in cases}
    read = session.scalar(
        select(func.count(distinct(ReadingSession.case_id)))
        .join(Case, Case.id == ReadingSession.case_id)
        .where(Case.dataset_id == dataset_id, ReadingSession.status == SessionStatus.finished)
    )
    with_positive = sum(1 for cid in titles if positives.get(cid, 0) > 0)
    top = sorted(((n, cid) for cid, n in positives.items() if cid in titles), key=lambda t: (-t[0], t[1]))
    metrics = session.scalars(select(Pair.metric).where(Pair.dataset_id == dataset_id).distinct()).all()
    positive_edges = session.execute(
        select(Pair.case_a_id, Pair.case_b_id).where(*in_graph, Pair.is_positive.is_(True))
    ).all()
    return PairStats(
        dataset_id=dataset_id,
        metric=metric,
        metrics=sorted(metrics),
        threshold=threshold,
        pairs=len(scores),
        positives=len(positive_scores),
        similarity=histogram(scores, lo, hi, SIMILARITY_BINS),
        positive_similarity=histogram(positive_scores, lo, hi, SIMILARITY_BINS),
        positives_per_case=count_buckets(positives.get(cid, 0) for cid in titles),
        top_cases=[CasePositives(case_id=cid, title=titles[cid], positives=n) for n, cid in top[:limit]],
        readers_per_pair=[CountBucket(value=int(v), items=int(n)) for v, n in sorted(readers)],
        coverage=PairCoverage(
            cases=len(titles),
            cases_with_pair=sum(1 for cid in titles if any_pair.get(cid, 0) > 0),
            cases_with_positive=with_positive,
            cases_with_finished_session=int(read or 0),
            fraction_with_positive=with_positive / len(titles) if titles else 0.0,
        ),
        label_precision=label_precision(session, list(titles), positive_edges, label_target(settings)),
    )


def label_precision(
    session: Session,
    case_ids: list[int],
    edges: Sequence[tuple[int, int]],
    target: FindingTarget | None = None,
) -> LabelPrecision | None:
    """Share of positive pairs joining same-label cases (labels resolved as for evaluation) against
    the share for two random labelled cases; None when fewer than two cases are labelled."""
    labels, _ = evaluation_labels(session, case_ids, target)
    if len(labels) < 2:
        return None
    counts = Counter(labels.values())
    n = len(labels)
    base = sum(c * (c - 1) for c in counts.values()) / (n * (n - 1))
    both = [(a, b) for a, b in edges if a in labels and b in labels]
    same = sum(labels[a] == labels[b] for a, b in both)
    return LabelPrecision(
        n_pairs=len(both),
        same_label=same / len(both) if both else None,
        base_rate=base,
        positives_per_case=2 * len(edges) / len(case_ids) if case_ids else 0.0,
    )
