"""AI second read: the active model's probabilities, shown only after the reader's own diagnosis.

The reader submits a diagnosis (which ends gaze capture and stores ``DiagnosisLabel``); only then can
the model's answer be requested for that session. The reader marks agree / disagree, or amends; the
original diagnosis stays as it was and the amendment is kept beside it, so "reader alone" and
"reader with AI" can both be scored against reference labels.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
from sklearn.metrics import cohen_kappa_score
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.datasets.settings import DatasetSettings
from server.exceptions import Conflict, Invalid, NotFound
from server.models import Case, Dataset, DiagnosisLabel, ReadingSession, SecondRead, SessionStatus, User
from trainer.protocol import interval, paired_difference

CHOICES = ("agree", "disagree", "amend")
RESAMPLES = 2000


def own_finished_session(session: Session, user: User, session_id: int) -> tuple[ReadingSession, Dataset]:
    """The caller's own finished reading session on a dataset with the second read on.

    Raises:
        NotFound: not the caller's session. Conflict: second read off, or the session not finished.
    """
    reading = session.get(ReadingSession, session_id)
    if reading is None or reading.reader_id != user.id:
        raise NotFound(f"session {session_id} not found")
    case = session.get(Case, reading.case_id)
    dataset = session.get(Dataset, case.dataset_id) if case is not None else None
    if dataset is None:
        raise NotFound(f"session {session_id} not found")
    if not DatasetSettings.stored(dataset.settings, dataset_id=dataset.id).second_read:
        raise Conflict("the AI second read is off for this dataset")
    if reading.status != SessionStatus.finished:
        raise Conflict(
            "submit your diagnosis first: the model's probabilities are shown only after it",
        )
    return reading, dataset


def reader_label(session: Session, reading: ReadingSession) -> str:
    label = session.scalar(select(DiagnosisLabel.label).where(DiagnosisLabel.session_id == reading.id))
    if label is None:
        raise Conflict("this session has no submitted diagnosis")
    return str(label)


def public(row: SecondRead) -> dict[str, Any]:
    return {
        "session_id": row.session_id,
        "case_id": row.case_id,
        "model_version": row.model_version_id,
        "reader_label": row.reader_label,
        "label": row.model_label,
        "probabilities": row.probabilities,
        "calibration": row.calibration,
        "choice": row.choice,
        "amended_label": row.amended_label,
        "clinical_use": "NOT FOR CLINICAL USE",
    }


def decide(row: SecondRead, dataset: Dataset, choice: str, amended: str | None) -> SecondRead:
    """Record the reader's answer (may be changed later; the first shown probabilities stay)."""
    if choice not in CHOICES:
        raise Invalid(f"choice must be one of {list(CHOICES)}")
    if choice == "amend":
        if amended not in dataset.label_set:
            raise Invalid(
                f"amended_label must be one of the dataset's labels {list(dataset.label_set)}",
            )
    elif amended is not None:
        raise Invalid("amended_label goes only with choice 'amend'")
    row.choice, row.amended_label, row.decided_at = choice, amended, datetime.now(UTC)
    return row


def _kappa(a: list[str], b: list[str]) -> float:
    if len(set(a) | set(b)) < 2:
        return float("nan")
    return float(cohen_kappa_score(a, b))


def agreement_stats(session: Session, dataset_id: int, *, seed: int = 0) -> dict[str, Any]:
    """Reader-model agreement (Cohen's kappa, 95% bootstrap CI) and, on cases with a reference label,
    reader-alone vs reader-with-AI accuracy with CIs and their paired difference."""
    rows = session.execute(
        select(SecondRead, Case.reference_label)
        .join(Case, Case.id == SecondRead.case_id)
        .where(Case.dataset_id == dataset_id)
        .order_by(SecondRead.id)
    ).all()
    shown = [r for r, _ in rows]
    choices = {c: sum(r.choice == c for r in shown) for c in CHOICES}
    out: dict[str, Any] = {"dataset_id": dataset_id, "n_shown": len(shown), "choices": choices}
    rng = np.random.default_rng(seed)
    if shown:
        readers, models = [r.reader_label for r in shown], [r.model_label for r in shown]
        idx = rng.integers(0, len(shown), size=(RESAMPLES, len(shown)))
        samples = np.array([_kappa([readers[i] for i in row], [models[i] for i in row]) for row in idx])
        out["kappa"] = {**interval(_kappa(readers, models), samples).to_dict(), "n": len(shown)}
    refs = [(r, ref) for r, ref in rows if ref is not None]
    if refs:
        alone = np.array([r.reader_label == ref for r, ref in refs], dtype=np.float64)
        final = np.array(
            [(r.amended_label if r.choice == "amend" else r.reader_label) == ref for r, ref in refs],
            dtype=np.float64,
        )
        idx = rng.integers(0, len(refs), size=(RESAMPLES, len(refs)))
        a_s, f_s = alone[idx].mean(1), final[idx].mean(1)
        diff = paired_difference(float(final.mean() - alone.mean()), f_s, a_s).to_dict()
        lo, hi = diff.get("ci_low"), diff.get("ci_high")
        verdict = (
            "better" if lo is not None and lo > 0 else "worse" if hi is not None and hi < 0 else "cannot tell"
        )
        out["accuracy"] = {
            "n": len(refs),
            "reader_alone": interval(float(alone.mean()), a_s).to_dict(),
            "reader_with_ai": interval(float(final.mean()), f_s).to_dict(),
            "difference": diff,
            "verdict": verdict,
        }
    return out
