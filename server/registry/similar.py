"""Nearest-neighbour retrieval of similar prior cases over the active model's stored embeddings."""

from __future__ import annotations

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.datasets.snapshot import consensus_labels
from server.models import Assignment, Case, CaseEmbedding, DiagnosisLabel, User
from server.registry import embedding
from server.registry.schemas import SimilarCase, SimilarPublic
from server.registry.versions import active_version


def _own_labels(session: Session, reader_id: int, case_ids: list[int]) -> dict[int, str]:
    rows = session.execute(
        select(DiagnosisLabel.case_id, DiagnosisLabel.label)
        .where(DiagnosisLabel.reader_id == reader_id, DiagnosisLabel.case_id.in_(case_ids))
        .order_by(DiagnosisLabel.created_at)
    )
    return {case_id: label for case_id, label in rows}  # the latest label wins


def similar_cases(session: Session, user: User, case: Case, k: int) -> SimilarPublic:
    """The ``k`` cases most similar to ``case`` under its dataset's active model.

    Readers only get cases on their own worklist and only their own diagnoses; admins get every case
    of the dataset with its reference label and the readers' majority diagnosis.
    """
    model = active_version(session, case.dataset_id)
    if model is None:
        return SimilarPublic(case_id=case.id, model_id=None, ready=False, items=[])
    stmt = select(CaseEmbedding.case_id, CaseEmbedding.vector, CaseEmbedding.dim).where(
        CaseEmbedding.model_version_id == model.id
    )
    if not user.is_admin:
        visible = select(Assignment.case_id).where(Assignment.reader_id == user.id)
        stmt = stmt.where((CaseEmbedding.case_id.in_(visible)) | (CaseEmbedding.case_id == case.id))
    rows = session.execute(stmt).all()
    vectors = {case_id: embedding.from_bytes(vec, dim) for case_id, vec, dim in rows}
    query = vectors.pop(case.id, None)
    if query is None or not vectors:
        return SimilarPublic(case_id=case.id, model_id=model.id, ready=query is not None, items=[])
    ids = np.fromiter(vectors, dtype=np.int64)
    matrix = np.stack([vectors[i] for i in ids.tolist()])  # (M, F), rows L2-normalised
    scores = matrix @ query  # (M,) cosine similarities
    order = np.argsort(-scores, kind="stable")[:k]
    top = [int(ids[i]) for i in order]
    cases = {c.id: c for c in session.scalars(select(Case).where(Case.id.in_(top)))}
    labels = consensus_labels(session, top) if user.is_admin else _own_labels(session, user.id, top)
    items = [
        SimilarCase(
            case_id=cid,
            title=cases[cid].title,
            similarity=float(scores[i]),
            reference_label=cases[cid].reference_label if user.is_admin else None,
            label=labels.get(cid),
        )
        for cid, i in zip(top, order, strict=True)
        if cid in cases
    ]
    return SimilarPublic(case_id=case.id, model_id=model.id, ready=True, items=items)
