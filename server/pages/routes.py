"""Server-rendered pages: login, home (worklist or admin overview), cases."""

from __future__ import annotations

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


def render(request: Request, template: str, user: User | None, **context: object) -> HTMLResponse:
    return templates.TemplateResponse(
        request, template, {"user": user, "csrf_token": ensure_csrf(request), **context}
    )


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
    user = page_user(request, ctx, session)
    if user is None:
        return RedirectResponse("/login", status_code=303)
    return render(request, "home.html", user)


@router.get("/cases", response_class=HTMLResponse, dependencies=[page_scope("read")])
def cases_page(request: Request, ctx: ContextDep, session: SessionDep) -> Response:
    user = page_user(request, ctx, session)
    if user is None:
        return RedirectResponse("/login?next=/cases", status_code=303)
    return render(request, "cases.html", user)


@router.get("/cases/{case_id}", response_class=HTMLResponse, dependencies=[page_scope("read")])
def case_page(case_id: Id, request: Request, ctx: ContextDep, session: SessionDep) -> Response:
    user = page_user(request, ctx, session)
    if user is None:
        return RedirectResponse(f"/login?next=/cases/{case_id}", status_code=303)
    return render(request, "case.html", user, case_id=case_id)


@router.get("/read/{case_id}", response_class=HTMLResponse, dependencies=[page_scope("read")])
def read_page(case_id: Id, request: Request, ctx: ContextDep, session: SessionDep) -> Response:
    """The reading viewer: opens (or resumes) the caller's reading session on the case."""
    user = page_user(request, ctx, session)
    if user is None:
        return RedirectResponse(f"/login?next=/read/{case_id}", status_code=303)
    return render(request, "read.html", user, case_id=case_id)


@router.get("/review", response_class=HTMLResponse, dependencies=[page_scope("read")])
def review_list_page(request: Request, ctx: ContextDep, session: SessionDep) -> Response:
    """Reading sessions the caller may review (admins: all; readers: their own)."""
    user = page_user(request, ctx, session)
    if user is None:
        return RedirectResponse("/login?next=/review", status_code=303)
    return render(request, "review_list.html", user)


@router.get("/review/sessions/{session_id}", response_class=HTMLResponse, dependencies=[page_scope("read")])
def review_session_page(session_id: Id, request: Request, ctx: ContextDep, session: SessionDep) -> Response:
    """Replay and heatmap of one session (the data API decides who may see it)."""
    user = page_user(request, ctx, session)
    if user is None:
        return RedirectResponse(f"/login?next=/review/sessions/{session_id}", status_code=303)
    return render(request, "review_session.html", user, session_id=session_id)


@router.get("/review/cases/{case_id}", response_class=HTMLResponse, dependencies=[page_scope("read")])
def review_case_page(case_id: Id, request: Request, ctx: ContextDep, session: SessionDep) -> Response:
    """Heatmap of a case aggregated over the sessions the caller may see."""
    user = page_user(request, ctx, session)
    if user is None:
        return RedirectResponse(f"/login?next=/review/cases/{case_id}", status_code=303)
    return render(request, "review_case.html", user, case_id=case_id)
