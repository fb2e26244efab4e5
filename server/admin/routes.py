"""Admin console: pages under /admin (users, datasets, assignments) and the APIs only they need."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from server.auth.routes import ensure_csrf
from server.auth.scopes import page_scope, require_scope
from server.cases.assignments import bulk_assign
from server.cases.schemas import BulkAssign, BulkAssignResult
from server.datasets.settings import DatasetSettings
from server.deps import AdminUser, ContextDep, SessionDep
from server.pages.routes import page_user
from server.pages.templating import templates

router = APIRouter()


@router.post(
    "/api/assignments/bulk",
    response_model=BulkAssignResult,
    status_code=status.HTTP_201_CREATED,
    dependencies=[require_scope("write")],
    tags=["cases"],
)
def post_bulk_assignments(body: BulkAssign, session: SessionDep, _admin: AdminUser) -> BulkAssignResult:
    """Put a dataset's cases (filtered) on readers' worklists: to all of them or round-robin."""
    return bulk_assign(session, body)


@router.get("/api/datasets-settings-schema", dependencies=[require_scope("read")], tags=["cases"])
def dataset_settings_schema(_admin: AdminUser) -> dict[str, Any]:
    """JSON schema of the typed dataset settings (the admin console builds its form from it)."""
    return DatasetSettings.model_json_schema()


@router.get("/admin", include_in_schema=False, dependencies=[page_scope("read")])
def admin_home() -> Response:
    return RedirectResponse("/admin/users", status_code=status.HTTP_303_SEE_OTHER)


def _admin_page(section: str, request: Request, ctx: ContextDep, session: SessionDep) -> Response:
    """Admins get the console section; readers a 403 page; anonymous visitors the login page."""
    user = page_user(request, ctx, session)
    if user is None:
        return RedirectResponse(f"/login?next=/admin/{section}", status_code=status.HTTP_303_SEE_OTHER)
    template, code = (f"admin/{section}.html", 200) if user.is_admin else ("dashboard/forbidden.html", 403)
    context = {"user": user, "csrf_token": ensure_csrf(request), "section": section}
    return templates.TemplateResponse(request, template, context, status_code=code)


@router.get(
    "/admin/users", response_class=HTMLResponse, include_in_schema=False, dependencies=[page_scope("read")]
)
def admin_users_page(request: Request, ctx: ContextDep, session: SessionDep) -> Response:
    """Users: create, change role, deactivate, reset password."""
    return _admin_page("users", request, ctx, session)


@router.get(
    "/admin/datasets", response_class=HTMLResponse, include_in_schema=False, dependencies=[page_scope("read")]
)
def admin_datasets_page(request: Request, ctx: ContextDep, session: SessionDep) -> Response:
    """Datasets: list and create (settings form generated from the typed settings)."""
    return _admin_page("datasets", request, ctx, session)


@router.get(
    "/admin/assignments",
    response_class=HTMLResponse,
    include_in_schema=False,
    dependencies=[page_scope("read")],
)
def admin_assignments_page(request: Request, ctx: ContextDep, session: SessionDep) -> Response:
    """Assignments: a dataset's cases onto readers' worklists, round-robin or to every reader."""
    return _admin_page("assignments", request, ctx, session)
