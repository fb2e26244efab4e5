"""Bulk worklist assignment: the cases of a dataset (optionally only unassigned ones, or matching a
search) onto readers' worklists, to every reader or round-robin across them."""

from __future__ import annotations

from typing import Literal

from fastapi import HTTPException, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.apitypes import DbInt, Id
from server.cases.service import assign
from server.models import Assignment, Case, Dataset, Role, User


class BulkAssign(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset_id: Id
    reader_ids: list[Id] = Field(min_length=1)
    #: "all": every case to every reader; "round_robin": each case to one reader, in turn.
    mode: Literal["all", "round_robin"] = "round_robin"
    #: Only cases on nobody's worklist yet.
    only_unassigned: bool = False
    #: Only cases whose title or external id contains this text (case-insensitive).
    search: str | None = Field(default=None, max_length=128)
    priority: DbInt = 0


class BulkAssignResult(BaseModel):
    cases: int
    assignments: int
    #: New assignments per reader id.
    per_reader: dict[int, int]


def bulk_assign(session: Session, body: BulkAssign) -> BulkAssignResult:
    """Assign the matching cases; existing assignments are kept (and not counted again).

    Raises:
        HTTPException: 404 unknown dataset, 422 listing every id that is not an active reader.
    """
    if session.get(Dataset, body.dataset_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"dataset {body.dataset_id} not found")
    readers = {u.id: u for u in session.scalars(select(User).where(User.id.in_(body.reader_ids)))}
    bad = [
        rid
        for rid in body.reader_ids
        if rid not in readers or readers[rid].role != Role.reader or not readers[rid].is_active
    ]
    if bad:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"not active readers: {bad}")
    query = select(Case).where(Case.dataset_id == body.dataset_id).order_by(Case.id)
    if body.only_unassigned:
        query = query.where(~select(Assignment.id).where(Assignment.case_id == Case.id).exists())
    if body.search:
        pattern = f"%{body.search.lower()}%"
        query = query.where(Case.title.ilike(pattern) | Case.external_id.ilike(pattern))
    cases = list(session.scalars(query).unique())
    ordered = [readers[rid] for rid in dict.fromkeys(body.reader_ids)]
    existing = set(
        session.execute(
            select(Assignment.case_id, Assignment.reader_id).where(
                Assignment.case_id.in_([c.id for c in cases])
            )
        ).tuples()
    )
    per_reader = {r.id: 0 for r in ordered}
    for i, case in enumerate(cases):
        targets = ordered if body.mode == "all" else [ordered[i % len(ordered)]]
        assign(session, case, targets, body.priority)
        for reader in targets:
            if (case.id, reader.id) not in existing:
                per_reader[reader.id] += 1
    return BulkAssignResult(cases=len(cases), assignments=sum(per_reader.values()), per_reader=per_reader)
