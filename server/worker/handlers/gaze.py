"""Gaze jobs: ``session-features`` (fixations -> stored per-session features) and ``pairs``
(incremental pair mining into the ``pairs`` table), both with ``trainer.gaze`` (numpy only).

Pair mining keeps one ``PairMiner`` per (dataset, metric settings) in the worker process, so a new
session costs O(N) comparisons (same reader's sessions only). A miner is rebuilt from the stored
features, vectorised, when the worker starts, when the settings change or on ``full``; sessions mined
by another worker meanwhile are simply added, since the database, not the cache, is the truth.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from server.datasets.settings import DatasetSettings
from server.jobs import queue
from server.jobs.kinds import FeaturesSpec, PairsSpec
from server.models import (
    Case,
    Dataset,
    Job,
    JobState,
    MinedSession,
    Pair,
    ReadingSession,
    SessionFeatures,
    SessionStatus,
    StoredImage,
    utcnow,
)
from server.reading.heatmaps import display_pixels_per_degree, session_fixations
from server.reading.quality import minable, mined_unminable
from server.reading.service import session_samples
from server.worker.context import JobContext, PermanentError
from trainer.gaze import FeatureConfig, MetricConfig, MiningConfig, PairMiner, compute_session_features
from trainer.gaze import SessionFeatures as GazeFeatures
from trainer.gaze.features import FEATURES_VERSION

logger = logging.getLogger(__name__)

#: Sessions per features job when it picks pending sessions itself.
FEATURES_BATCH = 200


def feature_config(dataset: Dataset) -> FeatureConfig:
    """The dataset's feature settings (``DatasetSettings.features``) as the gaze math's config."""
    return FeatureConfig(
        **DatasetSettings.stored(dataset.settings, dataset_id=dataset.id).features.model_dump()
    )


def mining_config(dataset: Dataset, metric: str | None = None) -> MiningConfig:
    """The dataset's mining settings (``DatasetSettings``: metric, threshold, aggregate, top_k, ...)."""
    settings = DatasetSettings.stored(dataset.settings, dataset_id=dataset.id)
    return MiningConfig(
        # MetricConfig checks a job's metric name at run time (ValueError naming the allowed metrics).
        metric=MetricConfig(metric or settings.metric, **settings.metric_options.model_dump()),  # type: ignore[arg-type]
        aggregate=settings.aggregate,
        threshold=settings.threshold,
        top_k=settings.top_k,
    )


def pending_feature_sessions(session: Session, dataset_id: int | None, limit: int) -> list[int]:
    """Finished sessions without stored features (oldest first)."""
    stmt = (
        select(ReadingSession.id)
        .outerjoin(SessionFeatures, SessionFeatures.session_id == ReadingSession.id)
        .where(ReadingSession.status == SessionStatus.finished, SessionFeatures.session_id.is_(None))
        .order_by(ReadingSession.id)
        .limit(limit)
    )
    if dataset_id is not None:
        stmt = stmt.join(Case, Case.id == ReadingSession.case_id).where(Case.dataset_id == dataset_id)
    return list(session.scalars(stmt))


def session_feature_blob(session: Session, session_id: int) -> tuple[int, bytes] | None:
    """(dataset id, feature bytes) of one session computed from its raw chunks, or None if gone."""
    row = session.execute(
        select(ReadingSession, Case, StoredImage)
        .join(Case, Case.id == ReadingSession.case_id)
        .outerjoin(StoredImage, StoredImage.case_id == Case.id)
        .where(ReadingSession.id == session_id)
    ).first()
    if row is None:
        return None
    reading, case, image = row
    # Fixations in degrees of visual angle: each sample's screen position over the session's screen
    # px per degree (its geometry, else the dataset setting), mapped back to image px.
    settings = DatasetSettings.stored(case.dataset.settings, dataset_id=case.dataset_id)
    ppd = display_pixels_per_degree(reading.display_info, settings.screen_pixels_per_degree)
    fixations = session_fixations(session_samples(session, session_id), ppd)  # (k, 3): x, y, duration
    size = (float(image.width), float(image.height)) if image else (1.0, 1.0)
    features = compute_session_features(
        reading.id, case.id, reading.reader_id, fixations, size, feature_config(case.dataset)
    )
    return case.dataset_id, features.to_bytes()


def _queue_pairs(ctx: JobContext, dataset_ids: set[int]) -> None:
    with ctx.db.session() as session:
        waiting = set(
            session.scalars(select(Job.dataset_id).where(Job.kind == "pairs", Job.state == JobState.queued))
        )
    for dataset_id in sorted(dataset_ids - waiting):
        queue.submit(ctx.db, PairsSpec(), dataset_id=dataset_id, created_by_id=None)


def run_features(ctx: JobContext, spec: FeaturesSpec) -> dict[str, Any]:
    """Compute and store features of the given (or all pending) sessions, then queue pair mining."""
    with ctx.db.session() as session:
        ids = spec.session_ids or pending_feature_sessions(session, ctx.job.dataset_id, FEATURES_BATCH)
    datasets: set[int] = set()
    for i, session_id in enumerate(ids):
        ctx.check()
        with ctx.db.session() as session:
            computed = session_feature_blob(session, session_id)
            if computed is None:
                continue
            dataset_id, blob = computed
            existing = session.get(SessionFeatures, session_id)
            if existing is None:
                session.add(SessionFeatures(session_id=session_id, version=FEATURES_VERSION, data=blob))
            else:
                existing.version, existing.data, existing.computed_at = FEATURES_VERSION, blob, utcnow()
            # New features invalidate earlier mining of this session.
            session.execute(delete(MinedSession).where(MinedSession.session_id == session_id))
            datasets.add(dataset_id)
        ctx.report((i + 1) / len(ids), phase="features", sessions=i + 1)
    _queue_pairs(ctx, datasets)
    return {"sessions": len(ids), "datasets": sorted(datasets)}


@dataclass
class _CachedMiner:
    key: str
    miner: PairMiner
    sessions: set[int] = field(default_factory=set)


#: (database url, dataset id, metric) -> miner of this worker process.
_MINERS: dict[tuple[str, int, str], _CachedMiner] = {}
_MINERS_LOCK = threading.Lock()


def _features_of(session: Session, dataset_id: int, exclude: set[int]) -> list[tuple[int, GazeFeatures]]:
    rows = session.execute(
        select(SessionFeatures.session_id, SessionFeatures.version, SessionFeatures.data)
        .join(ReadingSession, ReadingSession.id == SessionFeatures.session_id)
        .join(Case, Case.id == ReadingSession.case_id)
        .where(Case.dataset_id == dataset_id, ReadingSession.status == SessionStatus.finished, minable())
        .order_by(SessionFeatures.session_id)
    )
    out = []
    for session_id, version, data in rows:
        if session_id in exclude or version != FEATURES_VERSION:
            continue
        out.append((session_id, GazeFeatures.from_bytes(data)))
    return out


def run_pairs(ctx: JobContext, spec: PairsSpec) -> dict[str, Any]:
    """Mine new sessions of the job's dataset into the pair graph (all of them with ``full``)."""
    dataset_id = ctx.job.dataset_id
    if dataset_id is None:
        raise PermanentError("a pairs job needs a dataset_id")
    with ctx.db.session() as session:
        dataset = session.get(Dataset, dataset_id)
        if dataset is None:
            raise PermanentError(f"dataset {dataset_id} not found")
        try:
            config = mining_config(dataset, spec.metric)
        except (TypeError, ValueError) as exc:
            raise PermanentError(f"invalid pair-mining settings of dataset {dataset_id}: {exc}") from None
    metric = config.metric.metric
    key = json.dumps([repr(config)], sort_keys=True)
    full = spec.full
    with ctx.db.session() as session:
        # Sessions mined earlier and flagged since: their contribution to every pair they touched
        # is mixed into the scores, so only a full rebuild from the minable sessions removes it.
        withdrawn = mined_unminable(session, dataset_id, metric)
        if withdrawn:
            session.execute(
                delete(MinedSession).where(
                    MinedSession.metric == metric, MinedSession.session_id.in_(withdrawn)
                )
            )
            full = True
    with _MINERS_LOCK:
        cached = _MINERS.get((ctx.db.url, dataset_id, metric))
        if cached is None or cached.key != key or full:
            cached = None
    with ctx.db.session() as session:
        if cached is not None:
            mined = set(session.scalars(select(MinedSession.session_id).where(MinedSession.metric == metric)))
            # A cached session that is no longer marked mined had its features recomputed or was
            # deleted (or the database is another one): the cache is stale, rebuild it.
            if not cached.sessions <= mined:
                cached = None
        new = _features_of(session, dataset_id, cached.sessions if cached else set())
    ctx.report(0.1, phase="mining", new_sessions=len(new))
    if cached is None:
        cached = _CachedMiner(key, PairMiner.from_features([f for _, f in new], config), {s for s, _ in new})
    else:
        for i, (session_id, features) in enumerate(new):
            cached.miner.add_session(features)
            cached.sessions.add(session_id)
            ctx.report(0.1 + 0.6 * (i + 1) / max(1, len(new)))
    with _MINERS_LOCK:
        _MINERS[(ctx.db.url, dataset_id, metric)] = cached
    graph = cached.miner.pair_graph()
    affected = (
        None
        if (full or config.top_k is not None or len(new) == len(cached.sessions))
        else {int(f.case_id) for _, f in new}
    )
    written = _write_pairs(ctx, dataset_id, metric, graph, affected, [s for s, _ in new])
    stats = graph.stats()
    stats.pop("positives_per_case", None)
    return {
        "metric": metric,
        "new_sessions": len(new),
        "withdrawn_sessions": withdrawn,
        "pairs_written": written,
        "stats": stats,
    }


def _write_pairs(
    ctx: JobContext, dataset_id: int, metric: str, graph: Any, affected: set[int] | None, mined: list[int]
) -> int:
    """Upsert the graph's pairs (only those touching ``affected`` cases unless None) and mark sessions."""
    rows = [
        (int(a), int(b), float(s), int(n), bool(p))
        for a, b, s, n, p in zip(
            graph.case_a.tolist(),
            graph.case_b.tolist(),
            graph.score.tolist(),
            graph.n_readers.tolist(),
            graph.positive.tolist(),
            strict=True,
        )
        if affected is None or int(a) in affected or int(b) in affected
    ]
    with ctx.db.session() as session:
        # Serialise writers of one dataset's graph (PostgreSQL row lock; SQLite serialises writes).
        session.execute(select(Dataset.id).where(Dataset.id == dataset_id).with_for_update())
        stmt = select(Pair).where(Pair.dataset_id == dataset_id, Pair.metric == metric)
        if affected is not None:
            stmt = stmt.where(or_(Pair.case_a_id.in_(affected), Pair.case_b_id.in_(affected)))
        existing = {(p.case_a_id, p.case_b_id): p for p in session.scalars(stmt)}
        now = utcnow()
        for a, b, score, n, positive in rows:
            pair = existing.pop((a, b), None)
            if pair is None:
                session.add(
                    Pair(
                        dataset_id=dataset_id,
                        metric=metric,
                        case_a_id=a,
                        case_b_id=b,
                        score=score,
                        n_readers=n,
                        is_positive=positive,
                        updated_at=now,
                    )
                )
            elif (pair.score, pair.n_readers, pair.is_positive) != (score, n, positive):
                pair.score, pair.n_readers, pair.is_positive, pair.updated_at = score, n, positive, now
        for stale in existing.values():  # no longer scored (e.g. a session was deleted)
            session.delete(stale)
        done = set(
            session.scalars(
                select(MinedSession.session_id).where(
                    MinedSession.metric == metric, MinedSession.session_id.in_(mined)
                )
            )
        )
        session.add_all(MinedSession(session_id=s, metric=metric) for s in mined if s not in done)
    return len(rows)
