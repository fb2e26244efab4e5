"""AI second read routes: request the model's answer after a diagnosis, record agree / disagree /
amend, and the dashboard's reader-model agreement."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from server import audit
from server.apitypes import Id
from server.auth.scopes import require_scope
from server.deps import AdminUser, ContextDep, CurrentUser, SessionDep
from server.models import SecondRead
from server.registry import predict, second_read, versions
from server.storage import BlobStore

router = APIRouter(prefix="/api", tags=["second read"])

SessionId = Annotated[Id, Path()]


class SecondReadDecision(BaseModel):
    """The reader's answer to the model's probabilities."""

    model_config = ConfigDict(extra="forbid")

    choice: str = Field(description="agree | disagree | amend")
    amended_label: str | None = Field(None, max_length=64, description="the new diagnosis (amend only)")


@router.post("/sessions/{session_id}/second-read", dependencies=[require_scope("predict")])
async def request_second_read(
    session_id: SessionId, request: Request, ctx: ContextDep, session: SessionDep, user: CurrentUser
) -> dict[str, Any]:
    """The active model's calibrated probabilities for the case of the caller's finished session.

    409 until the diagnosis is submitted (gaze capture has ended by then), or when the dataset has
    the second read off or no active model with a diagnosis head. Asking again returns the same row.
    """
    blobs = BlobStore(ctx.settings.blob_dir)

    def resolve() -> tuple[SecondRead | None, Any]:
        reading, dataset = second_read.own_finished_session(session, user, session_id)
        existing = session.scalar(select(SecondRead).where(SecondRead.session_id == reading.id))
        if existing is not None:
            return existing, None
        label = second_read.reader_label(session, reading)
        version = versions.active_version(session, dataset.id)
        if version is None:
            raise HTTPException(status.HTTP_409_CONFLICT, "this dataset has no active model yet")
        model = predict.ready_model(blobs, version)
        items = predict.case_inputs(session, blobs, user, [reading.case_id])
        return None, (reading, label, model, items)

    existing, todo = await run_in_threadpool(resolve)
    if existing is not None:
        return second_read.public(existing)
    reading, label, model, items = todo
    # A full pool is a domain error: 503 with Retry-After.
    (pred,) = await predict.predict_in_pool(
        ctx.predict_pool,
        model,
        items,
        ctx.settings.max_image_pixels,
        tensors=ctx.predict_tensors,
        batcher=ctx.predict_batcher,
    )
    row = SecondRead(
        session_id=reading.id,
        case_id=reading.case_id,
        reader_id=user.id,
        model_version_id=model.version.id,
        reader_label=label,
        model_label=pred["label"],
        probabilities=pred["probabilities"],
        calibration=model.calibration[:512],
    )
    session.add(row)
    audit.record(
        session, "second_read", user_id=user.id, request=request, target_type="session", target_id=reading.id
    )
    session.flush()
    return second_read.public(row)


def _own_row(session: SessionDep, user: CurrentUser, session_id: Id) -> SecondRead:
    row = session.scalar(select(SecondRead).where(SecondRead.session_id == session_id))
    if row is None or (row.reader_id != user.id and not user.is_admin):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"session {session_id} has no second read")
    return row


@router.get("/sessions/{session_id}/second-read", dependencies=[require_scope("read")])
def get_second_read(session_id: SessionId, session: SessionDep, user: CurrentUser) -> dict[str, Any]:
    """The second read of a session (its reader or an admin)."""
    return second_read.public(_own_row(session, user, session_id))


@router.put("/sessions/{session_id}/second-read", dependencies=[require_scope("write")])
def decide_second_read(
    session_id: SessionId, body: SecondReadDecision, session: SessionDep, user: CurrentUser
) -> dict[str, Any]:
    """The reader's answer: agree, disagree, or amend with a new label (the original is kept)."""
    row = _own_row(session, user, session_id)
    if row.reader_id != user.id:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "only the session's reader answers its second read")
    _, dataset = second_read.own_finished_session(session, user, session_id)
    second_read.decide(row, dataset, body.choice, body.amended_label)
    session.flush()
    return second_read.public(row)


@router.get("/stats/second-read", dependencies=[require_scope("read")])
def second_read_stats(
    session: SessionDep, _admin: AdminUser, dataset_id: Annotated[Id, Query()]
) -> dict[str, Any]:
    """Reader-model agreement (Cohen's kappa with 95% CI) and, where reference labels exist,
    reader-alone vs reader-with-AI accuracy with CIs, their paired difference and verdict."""
    return second_read.agreement_stats(session, dataset_id)
