"""Server-rendered pages: login, home (worklist or admin overview), cases."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from server.apitypes import Id
from server.auth.routes import ensure_csrf
from server.auth.scopes import page_scope, public_route
from server.deps import ContextDep, SessionDep, authenticate
from server.models import User
from server.pages.templating import STATIC_DIR, templates

router = APIRouter(include_in_schema=False)


def page_user(request: Request, ctx: ContextDep, session: SessionDep) -> User | None:
    principal = authenticate(request, ctx, session)
    return principal.user if principal else None


def render(
    request: Request, template: str, user: User | None, *, status_code: int = 200, **context: Any
) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        template,
        {"user": user, "csrf_token": ensure_csrf(request), **context},
        status_code=status_code,
    )


def page(
    request: Request,
    ctx: ContextDep,
    session: SessionDep,
    template: str,
    *,
    reader_template: str | None = None,
    **context: Any,
) -> Response:
    """A page for the signed-in user; anonymous visitors go to the login page, then come back.

    Args:
        reader_template: for admin-only pages: what readers get instead (status 403).
        context: template variables besides ``user`` and ``csrf_token``.
    """
    user = page_user(request, ctx, session)
    if user is None:
        path = request.url.path
        return RedirectResponse("/login" if path == "/" else f"/login?next={path}", status_code=303)
    if reader_template is not None and not user.is_admin:
        return render(request, reader_template, user, status_code=403, **context)
    return render(request, template, user, **context)


@router.get("/favicon.ico", response_class=FileResponse, dependencies=[public_route()])
def favicon() -> FileResponse:
    """The tab icon (browsers ask for it on every page, signed in or not)."""
    return FileResponse(
        STATIC_DIR / "favicon.ico", media_type="image/x-icon", headers={"Cache-Control": "max-age=86400"}
    )


@router.get("/login", response_class=HTMLResponse, dependencies=[public_route()])
def login_page(request: Request, error: int = 0, next: str = "/") -> Response:
    return render(request, "login.html", None, error=bool(error), next=next)


@router.get("/", response_class=HTMLResponse, dependencies=[page_scope("read")])
def home(request: Request, ctx: ContextDep, session: SessionDep) -> Response:
    return page(request, ctx, session, "home.html")


@router.get("/cases", response_class=HTMLResponse, dependencies=[page_scope("read")])
def cases_page(request: Request, ctx: ContextDep, session: SessionDep) -> Response:
    return page(request, ctx, session, "cases.html")


@router.get("/cases/{case_id}", response_class=HTMLResponse, dependencies=[page_scope("read")])
def case_page(case_id: Id, request: Request, ctx: ContextDep, session: SessionDep) -> Response:
    return page(request, ctx, session, "case.html", case_id=case_id)


@router.get("/read/{case_id}", response_class=HTMLResponse, dependencies=[page_scope("read")])
def read_page(case_id: Id, request: Request, ctx: ContextDep, session: SessionDep) -> Response:
    """The reading viewer: opens (or resumes) the caller's reading session on the case."""
    return page(request, ctx, session, "read.html", case_id=case_id)


@router.get("/review", response_class=HTMLResponse, dependencies=[page_scope("read")])
def review_list_page(request: Request, ctx: ContextDep, session: SessionDep) -> Response:
    """Reading sessions the caller may review (admins: all; readers: their own)."""
    return page(request, ctx, session, "review_list.html")


@router.get("/review/sessions/{session_id}", response_class=HTMLResponse, dependencies=[page_scope("read")])
def review_session_page(session_id: Id, request: Request, ctx: ContextDep, session: SessionDep) -> Response:
    """Replay and heatmap of one session (the data API decides who may see it)."""
    return page(request, ctx, session, "review_session.html", session_id=session_id)


@router.get("/review/cases/{case_id}", response_class=HTMLResponse, dependencies=[page_scope("read")])
def review_case_page(case_id: Id, request: Request, ctx: ContextDep, session: SessionDep) -> Response:
    """Heatmap of a case aggregated over the sessions the caller may see."""
    return page(request, ctx, session, "review_case.html", case_id=case_id)
