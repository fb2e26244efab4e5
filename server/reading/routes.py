"""HTTP routes for reading sessions, their samples and heatmaps; includes the ``/ws/gaze`` socket.

The router's lifespan runs the process's group-commit gaze writer.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

from fastapi import APIRouter, FastAPI, Query, Request, status
from fastapi.responses import Response, StreamingResponse
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from server import audit
from server.apitypes import Id, Offset
from server.auth.scopes import require_scope
from server.cases.service import visible_case
from server.deps import AdminUser, CurrentUser, SessionDep
from server.models import ReadingSession, SessionEvent, SessionStatus, User
from server.reading import heatmaps, service
from server.reading import samples as codec
from server.reading.amend import amend_label
from server.reading.schemas import (
    HeatmapPublic,
    QualityOverride,
    SamplesPublic,
    SessionCreate,
    SessionEventPublic,
    SessionFinish,
    SessionPublic,
    SessionUpdate,
)
from server.reading.writer import GazeWriter
from server.reading.ws import router as ws_router


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    writer = GazeWriter(app.state.ctx.db)
    writer.start()
    app.state.gaze_writer = writer
    try:
        yield
    finally:
        # Everything already received is committed before the database is closed.
        await run_in_threadpool(writer.stop)
        app.state.gaze_writer = None


router = APIRouter(tags=["reading"], lifespan=_lifespan)
router.include_router(ws_router)

HeatmapSize = Annotated[int, Query(ge=4, le=256, description="Heatmap grid side.")]


def _audited(
    session: Session,
    request: Request,
    user: User,
    action: str,
    reading: ReadingSession,
    detail: dict[str, Any] | None = None,
) -> SessionPublic:
    """Audit ``action`` by ``user`` on ``reading`` (same transaction) and answer with the session."""
    audit.record(
        session,
        action,
        user_id=user.id,
        request=request,
        target_type="session",
        target_id=reading.id,
        detail=detail,
    )
    return service.publics(session, [reading])[0]


@router.post(
    "/api/sessions",
    response_model=SessionPublic,
    status_code=status.HTTP_201_CREATED,
    dependencies=[require_scope("write")],
)
def create_session(
    body: SessionCreate, request: Request, session: SessionDep, user: CurrentUser
) -> SessionPublic:
    """Open a reading session on a case of the caller's worklist; the caller becomes its reader."""
    reading = service.create_session(session, user, body)
    return _audited(session, request, user, "session_open", reading)


@router.get("/api/sessions", response_model=list[SessionPublic], dependencies=[require_scope("read")])
def list_sessions(
    session: SessionDep,
    user: CurrentUser,
    case_id: Id | None = None,
    reader_id: Id | None = None,
    status_: Annotated[SessionStatus | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: Offset = 0,
) -> list[SessionPublic]:
    """Sessions, newest first; readers see only their own (``reader_id`` is ignored for them)."""
    filters = service.SessionFilters(case_id=case_id, reader_id=reader_id, status=status_)
    return service.publics(session, service.list_sessions(session, user, filters, limit=limit, offset=offset))


@router.get("/api/sessions/{session_id}", response_model=SessionPublic, dependencies=[require_scope("read")])
def get_session(session_id: Id, session: SessionDep, user: CurrentUser) -> SessionPublic:
    reading = service.visible_session(session, user, session_id)
    return service.publics(session, [reading])[0]


@router.patch(
    "/api/sessions/{session_id}", response_model=SessionPublic, dependencies=[require_scope("write")]
)
def update_session(
    session_id: Id, body: SessionUpdate, session: SessionDep, user: CurrentUser
) -> SessionPublic:
    """Merge keys into ``source_info`` (e.g. calibration results) while the session is open."""
    reading = service.update_session(session, user, session_id, body.source_info)
    return service.publics(session, [reading])[0]


@router.post(
    "/api/sessions/{session_id}/finish", response_model=SessionPublic, dependencies=[require_scope("write")]
)
def finish_session(
    session_id: Id, body: SessionFinish, request: Request, session: SessionDep, user: CurrentUser
) -> SessionPublic:
    """Close the session with the reader's diagnosis; later gaze frames are refused."""
    reading = service.finish_session(session, user, session_id, body)
    return _audited(session, request, user, "session_finish", reading)


@router.put(
    "/api/sessions/{session_id}/label", response_model=SessionPublic, dependencies=[require_scope("write")]
)
def amend_session_label(
    session_id: Id, body: SessionFinish, request: Request, session: SessionDep, user: CurrentUser
) -> SessionPublic:
    """Amend the diagnosis of the caller's finished session; the earlier version is kept in ``history``."""
    reading = amend_label(session, user, session_id, body)
    return _audited(session, request, user, "label_amend", reading)


@router.put(
    "/api/sessions/{session_id}/quality-override",
    response_model=SessionPublic,
    dependencies=[require_scope("write")],
)
def override_quality(
    session_id: Id, body: QualityOverride, request: Request, session: SessionDep, admin: AdminUser
) -> SessionPublic:
    """Let a session flagged by the quality gate into pair mining (``override: true``) or keep it out."""
    reading = service.override_quality(session, admin, session_id, body.override)
    return _audited(session, request, admin, "quality_override", reading, detail={"override": body.override})


@router.get(
    "/api/sessions/{session_id}/events",
    response_model=list[SessionEventPublic],
    dependencies=[require_scope("read")],
)
def get_session_events(session_id: Id, session: SessionDep, user: CurrentUser) -> list[SessionEvent]:
    """The session's events (imported transcripts), in time order."""
    reading = service.visible_session(session, user, session_id)
    query = select(SessionEvent).where(SessionEvent.session_id == reading.id)
    return list(session.scalars(query.order_by(SessionEvent.t_ms, SessionEvent.id)))


@router.get(
    "/api/sessions/{session_id}/samples",
    response_model=SamplesPublic,
    responses={200: {"content": {"text/csv": {}}}},
    dependencies=[require_scope("read")],
)
def get_samples(
    session_id: Id,
    session: SessionDep,
    user: CurrentUser,
    format: Literal["json", "csv"] = "json",
) -> Response:
    """All stored samples in seq order; columns as in docs/gaze-protocol.md (CSV header = names)."""
    reading = service.visible_session(session, user, session_id)
    data = service.session_samples(session, reading.id)
    if format == "csv":
        return StreamingResponse(
            codec.csv_lines(data),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="session-{reading.id}-samples.csv"'},
        )
    # Built directly: validating millions of floats through the response model would dominate.
    body = {"session_id": reading.id, "columns": list(codec.COLUMNS), "samples": data.tolist()}
    return Response(json.dumps(body, allow_nan=False), media_type="application/json")


def _heatmap_public(heatmap: heatmaps.Heatmap, size: int) -> HeatmapPublic:
    return HeatmapPublic(
        width=heatmap.width,
        height=heatmap.height,
        size=size,
        sessions=heatmap.sessions,
        samples=heatmap.samples,
        values=heatmap.values.tolist(),
    )


@router.get(
    "/api/sessions/{session_id}/heatmap", response_model=HeatmapPublic, dependencies=[require_scope("read")]
)
def get_session_heatmap(
    session_id: Id, session: SessionDep, user: CurrentUser, size: HeatmapSize = 64
) -> HeatmapPublic:
    reading = service.visible_session(session, user, session_id)
    return _heatmap_public(heatmaps.session_heatmap(session, reading, size), size)


@router.get(
    "/api/cases/{case_id}/heatmap", response_model=HeatmapPublic, dependencies=[require_scope("read")]
)
def get_case_heatmap(
    case_id: Id, session: SessionDep, user: CurrentUser, size: HeatmapSize = 64
) -> HeatmapPublic:
    """Mean heatmap of the case's sessions the caller may see (readers: their own)."""
    visible_case(session, user, case_id)
    return _heatmap_public(heatmaps.case_heatmap_for(session, user, case_id, size), size)
