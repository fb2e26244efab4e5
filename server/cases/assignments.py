"""Bulk worklist assignment: the cases of a dataset (optionally only unassigned ones, or matching a
search) onto readers' worklists, to every reader or round-robin across them."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.cases.schemas import BulkAssign, BulkAssignResult
from server.cases.service import assign
from server.exceptions import Invalid, NotFound
from server.models import Assignment, Case, Dataset, Role, User


def bulk_assign(session: Session, body: BulkAssign) -> BulkAssignResult:
    """Assign the matching cases; existing assignments are kept (and not counted again).

    Raises:
        NotFound: unknown dataset.
        Invalid: listing every id that is not an active reader.
    """
    if session.get(Dataset, body.dataset_id) is None:
        raise NotFound(f"dataset {body.dataset_id} not found")
    readers = {u.id: u for u in session.scalars(select(User).where(User.id.in_(body.reader_ids)))}
    bad = [
        rid
        for rid in body.reader_ids
        if rid not in readers or readers[rid].role != Role.reader or not readers[rid].is_active
    ]
    if bad:
        raise Invalid(f"not active readers: {bad}")
    query = select(Case).where(Case.dataset_id == body.dataset_id).order_by(Case.id)
    if body.only_unassigned:
        query = query.where(~select(Assignment.id).where(Assignment.case_id == Case.id).exists())
    if body.search:
        pattern = f"%{body.search.lower()}%"
        query = query.where(Case.title.ilike(pattern) | Case.external_id.ilike(pattern))
    cases = list(session.scalars(query).unique())
    ordered = [readers[rid] for rid in dict.fromkeys(body.reader_ids)]
    existing = {
        (case_id, reader_id)
        for case_id, reader_id in session.execute(
            select(Assignment.case_id, Assignment.reader_id).where(
                Assignment.case_id.in_([c.id for c in cases])
            )
        )
    }
    per_reader = {r.id: 0 for r in ordered}
    for i, case in enumerate(cases):
        targets = ordered if body.mode == "all" else [ordered[i % len(ordered)]]
        assign(session, case, targets, body.priority)
        for reader in targets:
            if (case.id, reader.id) not in existing:
                per_reader[reader.id] += 1
    return BulkAssignResult(cases=len(cases), assignments=sum(per_reader.values()), per_reader=per_reader)
