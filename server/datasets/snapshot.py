"""Freeze a dataset's cases, labels and gaze positives into a trainer snapshot manifest.

The manifest (format in docs/trainer.md, written with ``trainer.data.snapshot``, which is pure Python)
lives in the job folder and is written once per job: a requeued job resumes on exactly the data its
checkpoints were trained on, while readers keep adding sessions to the live database.
"""

from __future__ import annotations

import collections
import hashlib
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.cases.service import PIXELS_FILE
from server.datasets.settings import DatasetSettings
from server.models import Case, Dataset, DiagnosisLabel, Pair, ReadingSession, SessionStatus, StoredImage
from server.registry.embedding import shown_inverted
from server.storage import BlobStore
from trainer.data.snapshot import make_snapshot, save_snapshot
from trainer.protocol.labels import (
    FindingTarget,
    LabelSummary,
    latest_per_reader,
    resolve_finding_labels,
    resolve_labels,
)


def consensus_labels(session: Session, case_ids: list[int]) -> dict[int, str]:
    """Majority reader diagnosis per case (ties: the label given most recently among the tied)."""
    votes: dict[int, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    latest: dict[tuple[int, str], Any] = {}
    rows = session.execute(
        select(DiagnosisLabel.case_id, DiagnosisLabel.label, DiagnosisLabel.created_at).where(
            DiagnosisLabel.case_id.in_(case_ids)
        )
    )
    for case_id, label, at in rows:
        votes[case_id][label] += 1
        key = (case_id, label)
        latest[key] = max(latest.get(key, at), at)
    out: dict[int, str] = {}
    for case_id, counter in votes.items():
        top = max(counter.values())
        tied = [label for label, n in counter.items() if n == top]
        out[case_id] = max(tied, key=lambda label: (latest[(case_id, label)], label))
    return out


def evaluation_labels(
    session: Session, case_ids: list[int], target: FindingTarget | None = None
) -> tuple[dict[int, str], LabelSummary]:
    """Each case's evaluation label by the documented precedence (reference label, an imported
    dataset label, the readers' majority; see ``trainer.protocol.labels``) and where labels came from.

    With ``target`` (the dataset setting ``labels.target_finding``) the labels are that finding's
    presence instead, from imported finding columns and reading certainties."""
    cases = session.execute(
        select(Case.id, Case.reference_label, Case.attributes).where(Case.id.in_(case_ids))
    ).all()
    rows = session.execute(
        select(
            DiagnosisLabel.case_id,
            DiagnosisLabel.reader_id,
            DiagnosisLabel.label,
            DiagnosisLabel.created_at,
            DiagnosisLabel.attributes,
        ).where(DiagnosisLabel.case_id.in_(case_ids))
    ).all()
    if target is not None:
        latest: dict[tuple[int, str], tuple[Any, Any]] = {}
        for c, r, _, at, attrs in rows:
            if (c, str(r)) not in latest or at >= latest[(c, str(r))][0]:
                latest[(c, str(r))] = (at, attrs)
        per_case: dict[int, dict[str, Any]] = {}
        for (c, r), (_, attrs) in latest.items():
            per_case.setdefault(c, {})[r] = attrs
        resolved, summary = resolve_finding_labels(target, {c: attrs for c, _, attrs in cases}, per_case)
    else:
        readings = latest_per_reader([(c, str(r), lab, at) for c, r, lab, at, _ in rows])
        resolved, summary = resolve_labels(
            {c: ref for c, ref, _ in cases}, {c: attrs for c, _, attrs in cases}, readings
        )
    return {c: r.label for c, r in resolved.items() if r.label is not None}, summary


def label_target(settings: DatasetSettings) -> FindingTarget | None:
    """The dataset's target finding (setting ``labels``), or None for its own labels."""
    finding = settings.labels.target_finding
    return FindingTarget(finding, settings.labels.certainty_threshold) if finding else None


def patient_keys(session: Session, case_ids: list[int]) -> dict[str, str]:
    """Case id -> patient key (case attribute ``patient_key``) where an upload or import set one."""
    rows = session.execute(select(Case.id, Case.attributes).where(Case.id.in_(case_ids)))
    return {
        str(c): str(attrs["patient_key"])
        for c, attrs in rows
        if isinstance(attrs, dict) and attrs.get("patient_key") not in (None, "")
    }


def positive_count(session: Session, dataset_id: int, metric: str) -> int:
    """Number of positive pairs of the dataset for ``metric``."""
    return int(
        session.scalar(
            select(func.count()).where(
                Pair.dataset_id == dataset_id, Pair.metric == metric, Pair.is_positive.is_(True)
            )
        )
        or 0
    )


def build_snapshot(
    session: Session, blobs: BlobStore, dataset_id: int, manifest: Path, *, metric: str | None = None
) -> dict[str, Any]:
    """Write the manifest for ``dataset_id`` and return its summary (counts, gaze, sha256).

    Args:
        session: database session (read only).
        blobs: blob store holding the case images.
        dataset_id: the dataset.
        manifest: where to write ``snapshot.json``.
        metric: pair metric (the dataset's by default).

    Returns:
        ``{"counts": {...}, "gaze": {"metric", "threshold"}, "sha256": ..., "path": ...}``.
    """
    dataset = session.get(Dataset, dataset_id)
    if dataset is None:
        raise LookupError(f"dataset {dataset_id} not found")
    settings = DatasetSettings.stored(dataset.settings, dataset_id=dataset.id)
    metric, threshold = metric or settings.metric, settings.threshold
    rows = session.execute(
        select(Case.id, StoredImage)
        .join(StoredImage, StoredImage.case_id == Case.id)
        .where(Case.dataset_id == dataset_id)
        .order_by(Case.id)
    ).all()
    case_ids = [case_id for case_id, _ in rows]
    labels, label_summary = evaluation_labels(session, case_ids, label_target(settings))
    cases = [
        (
            str(case_id),
            blobs.path(f"{image.storage_dir}/{PIXELS_FILE}"),
            labels.get(case_id),
            shown_inverted(image),
        )
        for case_id, image in rows
    ]
    known = {c[0] for c in cases}
    pairs = [
        (str(a), str(b), float(score))
        for a, b, score in session.execute(
            select(Pair.case_a_id, Pair.case_b_id, Pair.score)
            .where(Pair.dataset_id == dataset_id, Pair.metric == metric, Pair.is_positive.is_(True))
            .order_by(Pair.case_a_id, Pair.case_b_id)
        )
        if str(a) in known and str(b) in known
    ]
    finished = (
        select(ReadingSession.id, ReadingSession.reader_id)
        .join(Case, Case.id == ReadingSession.case_id)
        .where(Case.dataset_id == dataset_id, ReadingSession.status == SessionStatus.finished)
        .subquery()
    )
    n_sessions = int(session.scalar(select(func.count()).select_from(finished)) or 0)
    n_readers = int(session.scalar(select(func.count(func.distinct(finished.c.reader_id)))) or 0)
    classes = [str(c) for c in dataset.label_set]
    classes += sorted({label for label in labels.values() if label not in classes})
    gaze = {"metric": metric, "threshold": threshold}
    snapshot = make_snapshot(
        cases,
        pairs,
        classes=classes,
        metadata={
            "counts": {"sessions": n_sessions, "readers": n_readers},
            "gaze": gaze,
            "dataset": {"id": dataset.id, "name": dataset.name},
            "labels": label_summary.to_dict(),
        },
        groups=patient_keys(session, case_ids),
    )
    save_snapshot(snapshot, manifest)
    return {
        "counts": snapshot.counts,
        "gaze": gaze,
        "labels": label_summary.to_dict(),
        "sha256": hashlib.sha256(manifest.read_bytes()).hexdigest(),
        "path": str(manifest),
    }
