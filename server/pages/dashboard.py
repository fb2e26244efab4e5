"""The admin dashboard page (gaze data, pair graph, jobs, model versions, retraining)."""

from __future__ import annotations

from fastapi import APIRouter, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from server.auth.routes import ensure_csrf
from server.auth.scopes import page_scope
from server.datasets.settings import DEFAULT_THRESHOLD, GAZE_METRICS
from server.deps import ContextDep, SessionDep
from server.pages.routes import page_user
from server.pages.templating import templates

router = APIRouter(include_in_schema=False)


@router.get("/dashboard", response_class=HTMLResponse, dependencies=[page_scope("read")])
def dashboard_page(request: Request, ctx: ContextDep, session: SessionDep) -> Response:
    """Admins get the dashboard; readers a 403 page; anonymous visitors the login page."""
    user = page_user(request, ctx, session)
    if user is None:
        return RedirectResponse("/login?next=/dashboard", status_code=status.HTTP_303_SEE_OTHER)
    template, code = ("dashboard.html", 200) if user.is_admin else ("dashboard/forbidden.html", 403)
    context = {
        "user": user,
        "csrf_token": ensure_csrf(request),
        # the retrain form offers the metrics DatasetSettings accepts; the dataset's own values
        # are filled in by the page script when a dataset is picked
        "gaze_metrics": GAZE_METRICS,
        "default_threshold": DEFAULT_THRESHOLD,
    }
    return templates.TemplateResponse(request, template, context, status_code=code)
