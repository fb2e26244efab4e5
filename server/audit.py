"""Append-only audit trail of security-relevant events."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from server.auth.client import client_address
from server.models import AuditLog

if TYPE_CHECKING:
    from starlette.requests import Request


def client_ip(request: Request | None) -> str | None:
    """The client's address (from ``X-Forwarded-For`` only behind a trusted proxy)."""
    if request is None:
        return None
    ctx = getattr(request.app.state, "ctx", None)
    proxies = ctx.settings.trusted_proxy_networks if ctx is not None else ()
    return client_address(request, proxies)


def record(
    session: Session,
    action: str,
    *,
    user_id: int | None,
    request: Request | None = None,
    target_type: str | None = None,
    target_id: object | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Add an audit row to the caller's transaction (never include PHI in ``detail``)."""
    session.add(
        AuditLog(
            user_id=user_id,
            action=action,
            target_type=target_type,
            target_id=None if target_id is None else str(target_id),
            client_ip=client_ip(request),
            detail=detail or {},
        )
    )
