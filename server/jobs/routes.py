"""HTTP routes of the job queue (admins only): submit, list, inspect, cancel, follow over SSE."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse
from sqlalchemy import func, select

from server import audit
from server.apitypes import Id, Offset
from server.auth.scopes import require_scope
from server.datasets import service as datasets
from server.datasets.settings import RetrainPolicy
from server.db import Database
from server.deps import AdminUser, ContextDep, SessionDep
from server.exceptions import Invalid
from server.jobs import queue
from server.jobs.kinds import NEEDS_DATASET, spec_of, validate_params
from server.jobs.queue import TERMINAL_STATES, RetrainAlreadyActive, as_utc
from server.jobs.schemas import JobCreate, JobPage, JobPublic
from server.models import Dataset, Job, JobState, ModelVersion

router = APIRouter(prefix="/api", tags=["jobs"])

#: Seconds between database polls of an SSE stream, and between keep-alive comments.
SSE_POLL_S = 0.5
SSE_KEEPALIVE_S = 15.0
_DATES = ("created_at", "run_after", "started_at", "heartbeat_at", "finished_at")


def job_public(job: Job, *, with_history: bool = True) -> JobPublic:
    """API shape of a job; timestamps as UTC; the loss/lr history only when asked for."""
    public = JobPublic.model_validate(job)
    updates: dict[str, Any] = {name: as_utc(getattr(public, name)) for name in _DATES}
    if not with_history and "history" in public.progress_info:
        updates["progress_info"] = {k: v for k, v in public.progress_info.items() if k != "history"}
    return public.model_copy(update=updates)


def _get_job(session: SessionDep, job_id: Id) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"job {job_id} not found")
    return job


def _check_references(session: SessionDep, kind: str, dataset_id: Id | None, params: dict[str, Any]) -> None:
    if kind in NEEDS_DATASET and dataset_id is None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"a {kind} job needs dataset_id")
    if dataset_id is not None and session.get(Dataset, dataset_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"dataset {dataset_id} not found")
    model_ids = params.get("model_ids") or ([params["model_id"]] if "model_id" in params else [])
    for model_id in model_ids:
        if session.get(ModelVersion, model_id) is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"model {model_id} not found")


@router.post(
    "/jobs",
    response_model=JobPublic,
    status_code=status.HTTP_201_CREATED,
    dependencies=[require_scope("write")],
)
def submit_job(
    body: JobCreate, request: Request, ctx: ContextDep, session: SessionDep, admin: AdminUser
) -> Any:
    """Queue a job. A second retrain for a dataset that has one queued or running gets 409 naming it."""
    params, errors = validate_params(body.kind, body.params)
    if errors:
        raise Invalid(errors)
    _check_references(session, body.kind, body.dataset_id, params)
    if body.dataset_id is None and params.get("model_id") is not None:
        model = session.get(ModelVersion, params["model_id"])
        dataset_id: Id | None = model.dataset_id if model else None
    else:
        dataset_id = body.dataset_id
    try:
        job = queue.submit(ctx.db, spec_of(body.kind, params), dataset_id=dataset_id, created_by_id=admin.id)
    except RetrainAlreadyActive as exc:
        running = exc.job
        detail = f"a retrain of dataset {dataset_id} is already {running.state.value} (job {running.id})"
        return JSONResponse(
            {
                "detail": detail,
                "job": job_public(exc.job, with_history=False).model_dump(mode="json"),
            },
            status_code=status.HTTP_409_CONFLICT,
        )
    audit.record(
        session,
        "job_submit",
        user_id=admin.id,
        request=request,
        target_type="job",
        target_id=job.id,
        detail={"kind": job.kind, "dataset_id": dataset_id},
    )
    return job_public(job)


@router.get("/jobs", response_model=JobPage, dependencies=[require_scope("read")])
def list_jobs(
    session: SessionDep,
    _admin: AdminUser,
    kind: Annotated[str | None, Query(max_length=32)] = None,
    state: JobState | None = None,
    dataset_id: Id | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
) -> JobPage:
    """Newest first; the loss/lr history is left out (GET /api/jobs/{id} has it)."""
    stmt = select(Job)
    if kind is not None:
        stmt = stmt.where(Job.kind == kind)
    if state is not None:
        stmt = stmt.where(Job.state == state)
    if dataset_id is not None:
        stmt = stmt.where(Job.dataset_id == dataset_id)
    total = int(session.scalar(select(func.count()).select_from(stmt.subquery())) or 0)
    jobs = session.scalars(stmt.order_by(Job.id.desc()).limit(limit).offset(offset))
    return JobPage(
        items=[job_public(j, with_history=False) for j in jobs], total=total, limit=limit, offset=offset
    )


@router.get("/jobs/{job_id}", response_model=JobPublic, dependencies=[require_scope("read")])
def get_job(job_id: Id, session: SessionDep, _admin: AdminUser) -> JobPublic:
    return job_public(_get_job(session, job_id))


@router.post("/jobs/{job_id}/cancel", response_model=JobPublic, dependencies=[require_scope("write")])
def cancel_job(job_id: Id, request: Request, session: SessionDep, admin: AdminUser) -> JobPublic:
    """Cancel: a queued job at once; a running one when its worker's next heartbeat sees the request
    (about a second), which kills the job's subprocess. Cancelling a finished job changes nothing."""
    job = queue.request_cancel(session, _get_job(session, job_id))
    audit.record(
        session, "job_cancel", user_id=admin.id, request=request, target_type="job", target_id=job_id
    )
    return job_public(job)


def _snapshot(db: Database, job_id: Id) -> dict[str, Any] | None:
    with db.session() as session:
        job = session.get(Job, job_id)
        return None if job is None else job_public(job).model_dump(mode="json")


def _sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


async def _job_events(request: Request, db: Database, job_id: Id) -> AsyncIterator[str]:
    last: dict[str, Any] | None = None
    last_sent = time.monotonic()
    yield "retry: 2000\n\n"
    while True:
        current = await run_in_threadpool(_snapshot, db, job_id)
        if current is None:
            yield _sse("gone", {"id": job_id})
            return
        changed = {k: v for k, v in current.items() if k != "heartbeat_at"}
        if last is None or changed != last:
            last = changed
            last_sent = time.monotonic()
            yield _sse("job", current)
        if JobState(current["state"]) in TERMINAL_STATES:
            yield _sse("end", {"id": job_id, "state": current["state"]})
            return
        if time.monotonic() - last_sent > SSE_KEEPALIVE_S:
            last_sent = time.monotonic()
            yield ": keep-alive\n\n"
        if await request.is_disconnected():
            return
        await asyncio.sleep(SSE_POLL_S)


@router.get("/jobs/{job_id}/events", response_class=StreamingResponse, dependencies=[require_scope("read")])
def job_events(
    job_id: Id, request: Request, ctx: ContextDep, session: SessionDep, _admin: AdminUser
) -> StreamingResponse:
    """Server-sent events: ``job`` (the full job, on every change), then ``end`` when it finishes."""
    _get_job(session, job_id)
    session.close()  # the stream polls with its own short sessions; do not hold a connection for hours
    return StreamingResponse(
        _job_events(request, ctx.db, job_id),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get(
    "/datasets/{dataset_id}/retrain-policy",
    response_model=RetrainPolicy,
    dependencies=[require_scope("read")],
)
def get_retrain_policy(dataset_id: Id, session: SessionDep, _admin: AdminUser) -> RetrainPolicy:
    """The dataset's automatic retraining policy (defaults: disabled)."""
    return datasets.retrain_policy(session, dataset_id)


@router.put("/datasets/{dataset_id}/retrain-policy", dependencies=[require_scope("write")])
def put_retrain_policy(
    dataset_id: Id, body: dict[str, Any], request: Request, session: SessionDep, admin: AdminUser
) -> Any:
    """Replace the policy; its training config is validated like a retrain job's (errors name the field)."""
    policy = datasets.set_retrain_policy(session, dataset_id, body)
    audit.record(
        session,
        "retrain_policy",
        user_id=admin.id,
        request=request,
        target_type="dataset",
        target_id=dataset_id,
        detail={"enabled": policy.enabled},
    )
    return JSONResponse(policy.model_dump())
