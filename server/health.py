"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import text

from server.auth.scopes import public_route
from server.deps import ContextDep

router = APIRouter(tags=["health"])


@router.get("/api/health", dependencies=[public_route()])
def health(ctx: ContextDep) -> dict[str, Any]:
    """``{"status": "ok"}`` when the database answers (no authentication)."""
    try:
        with ctx.db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        database = "ok"
    except Exception:  # noqa: BLE001 - health reports, never raises
        database = "unavailable"
    return {
        "status": "ok" if database == "ok" else "degraded",
        "database": database,
        "backend": ctx.db.engine.dialect.name,
        "version": "0.1.0",
    }
