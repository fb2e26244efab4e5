"""The WebSocket handshake shared by every socket (``/ws/gaze``, ``/ws/tracker``).

A handshake is refused for a foreign Origin (close 4403) and for a caller who is not signed in or
lacks the ``write`` scope (close 4401); otherwise the socket is accepted for that user.
"""

from __future__ import annotations

import logging
from typing import Final, cast
from urllib.parse import urlsplit

from fastapi import HTTPException, Request, WebSocket
from starlette.concurrency import run_in_threadpool

from server.context import AppContext
from server.deps import authenticate
from server.models import User

logger = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED: Final = 4401
CLOSE_FORBIDDEN: Final = 4403
CLOSE_NOT_FOUND: Final = 4404


def origin_allowed(origin: str | None, host: str | None, allowed: list[str]) -> bool:
    """Whether a handshake's Origin may open the socket.

    Browsers always send Origin on WebSocket handshakes, so a page on another site (which could
    ride on the reader's cookie) is always recognisable; clients that send no Origin at all are
    scripts and tracker bridges, which authenticate with a token of their own.

    Args:
        origin: The Origin header, if any.
        host: The Host header the client connected to.
        allowed: Extra allowed origins (``MCGIP_ALLOWED_ORIGINS``), e.g. ``https://viewer.example``.
    """
    if origin is None:
        return True
    normalised = origin.strip().rstrip("/").lower()
    if normalised in {a.strip().rstrip("/").lower() for a in allowed}:
        return True
    parts = urlsplit(normalised)
    if parts.scheme not in ("http", "https") or not parts.netloc or host is None:
        return False
    return parts.netloc == host.strip().lower()


def authenticate_socket(websocket: WebSocket, ctx: AppContext) -> int | None:
    """The id of the user behind the handshake (``?token=``, bearer header or cookie), or None."""
    with ctx.db.session() as session:
        token = websocket.query_params.get("token")
        if token is not None:
            claims = ctx.tokens.decode(token)
            if claims is None or "write" not in claims.scopes:
                return None
            user = session.get(User, claims.user_id)
            if user is None or not user.is_active or user.token_version != claims.token_version:
                return None
            return user.id
        try:
            # authenticate() only reads headers, the cookie session and the scope, which a
            # WebSocket handshake carries exactly like a request.
            principal = authenticate(cast(Request, websocket), ctx, session)
        except HTTPException:
            return None
        if principal is None or "write" not in principal.scopes:
            return None
        return principal.user.id


async def accept_user(websocket: WebSocket, ctx: AppContext, name: str) -> int | None:
    """Run the handshake; the accepted user's id, or None after closing the socket.

    Args:
        name: the socket's name in log lines (``gaze``, ``tracker``).
    """
    origin = websocket.headers.get("origin")
    if not origin_allowed(origin, websocket.headers.get("host"), ctx.settings.allowed_origins):
        logger.warning("%s socket refused for origin %r", name, origin)
        await websocket.accept()
        await websocket.close(CLOSE_FORBIDDEN, "origin not allowed")
        return None
    user_id = await run_in_threadpool(authenticate_socket, websocket, ctx)
    await websocket.accept()
    if user_id is None:
        await websocket.close(CLOSE_UNAUTHENTICATED, "not authenticated")
        return None
    return user_id
