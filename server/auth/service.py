"""Login: rate-limited credential checks that leave an audit trail."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from server import audit
from server.auth.passwords import verify_password
from server.context import AppContext
from server.exceptions import RateLimited, Unauthenticated
from server.models import User

if TYPE_CHECKING:
    from starlette.requests import Request


def login(session: Session, ctx: AppContext, request: Request, username: str, password: str) -> User:
    """Check credentials, backing off per account *and* client after repeated failures.

    Raises:
        RateLimited: this client is backing off for this account (``Retry-After``).
        Unauthenticated: wrong credentials or a disabled account.
    """
    key = ctx.login_limiter.key(username, audit.client_ip(request))
    wait = ctx.login_limiter.retry_after(key)
    if wait is not None:
        raise RateLimited(
            f"too many failed logins for this account from your address; retry in {wait} s",
            retry_after_s=wait,
        )
    user = session.scalar(select(User).where(User.username == username))
    if (
        not verify_password(user.password_hash if user else None, password)
        or user is None
        or not user.is_active
    ):
        ctx.login_limiter.record_failure(key)
        audit.record(
            session,
            "login_failed",
            user_id=user.id if user else None,
            request=request,
            detail={"username": username[:64]},
        )
        # Commit the failure row even though the request fails.
        session.commit()
        raise Unauthenticated("incorrect username or password")
    ctx.login_limiter.reset(key)
    audit.record(session, "login", user_id=user.id, request=request)
    return user
