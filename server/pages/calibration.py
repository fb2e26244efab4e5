"""The webcam calibration page: 9-point calibration and validation before reading."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from server.auth.scopes import page_scope
from server.deps import ContextDep, SessionDep
from server.pages.routes import page

router = APIRouter(include_in_schema=False)


def _safe_next(target: str) -> str:
    # Only same-site paths: an absolute or protocol-relative URL would make this an open redirect.
    return target if target.startswith("/") and not target.startswith("//") else "/"


@router.get("/calibrate", response_class=HTMLResponse, dependencies=[page_scope("read")])
def calibrate_page(request: Request, ctx: ContextDep, session: SessionDep, next: str = "/") -> Response:
    """Camera check, screen settings, 9-point calibration and validation; then back to ``next``."""
    return page(request, ctx, session, "calibrate.html", next_url=_safe_next(next))
