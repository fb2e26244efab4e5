"""The admin dashboard page (gaze data, pair graph, jobs, model versions, retraining)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from server.auth.scopes import page_scope
from server.datasets.settings import DEFAULT_THRESHOLD, GAZE_METRICS
from server.deps import ContextDep, SessionDep
from server.pages.routes import page

router = APIRouter(include_in_schema=False)


@router.get("/dashboard", response_class=HTMLResponse, dependencies=[page_scope("read")])
def dashboard_page(request: Request, ctx: ContextDep, session: SessionDep) -> Response:
    """Admins get the dashboard; readers a 403 page; anonymous visitors the login page."""
    return page(
        request,
        ctx,
        session,
        "dashboard.html",
        reader_template="dashboard/forbidden.html",
        # the retrain form offers the metrics DatasetSettings accepts; the page script fills in the
        # picked dataset's own metric and threshold
        gaze_metrics=GAZE_METRICS,
        default_threshold=DEFAULT_THRESHOLD,
    )
