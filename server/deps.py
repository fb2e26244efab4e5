"""FastAPI dependencies: database session, the authenticated principal and role checks."""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from sqlalchemy.orm import Session

from server.auth.scopes import ROLE_SCOPES
from server.context import AppContext
from server.models import User

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CSRF_HEADER = "X-CSRF-Token"


def get_context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


ContextDep = Annotated[AppContext, Depends(get_context)]


def get_session(ctx: ContextDep) -> Iterator[Session]:
    """A database session committed when the handler returns without error."""
    with ctx.db.session() as session:
        yield session


#: ``scope="function"``: the session commits once the handler has returned and its response is
#: serialised, but *before* the response is sent, so a 2xx always means the change is committed
#: (the default request scope would commit after the client already has its answer).
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


@dataclass(frozen=True)
class Principal:
    """Who is calling and how they authenticated."""

    user: User
    via: str  # "token" or "cookie"
    scopes: frozenset[str]

    @property
    def is_admin(self) -> bool:
        return self.user.is_admin


class NotAuthenticated(HTTPException):
    def __init__(self, detail: str = "not authenticated") -> None:
        super().__init__(status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Bearer"})


def _bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value:
        return value.strip()
    return None


def authenticate(request: Request, ctx: AppContext, session: Session) -> Principal | None:
    """Resolve the caller from a bearer token or the browser session cookie (None if anonymous).

    Raises:
        NotAuthenticated: a bearer token was given but is invalid or expired.
    """
    token = _bearer_token(request)
    if token is not None:
        claims = ctx.tokens.decode(token)
        if claims is None:
            raise NotAuthenticated("invalid or expired token")
        user = session.get(User, claims.user_id)
        if user is None or not user.is_active or user.token_version != claims.token_version:
            raise NotAuthenticated("token no longer valid")
        # A token never carries more than its user's current role allows (e.g. after a demotion).
        return Principal(user=user, via="token", scopes=claims.scopes & ROLE_SCOPES[user.role])
    uid = request.session.get("uid") if "session" in request.scope else None
    if isinstance(uid, int):
        user = session.get(User, uid)
        if user is not None and user.is_active and user.token_version == request.session.get("tv"):
            return Principal(user=user, via="cookie", scopes=ROLE_SCOPES[user.role])
    return None


def check_csrf(request: Request) -> None:
    """Cookie-authenticated unsafe requests must echo the session's CSRF token in a header."""
    expected = request.session.get("csrf", "")
    sent = request.headers.get(CSRF_HEADER, "")
    if not expected or not hmac.compare_digest(str(expected), sent):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"missing or wrong {CSRF_HEADER} header")


def get_principal_or_none(request: Request, ctx: ContextDep, session: SessionDep) -> Principal | None:
    """The caller, or None when anonymous; cookie-authenticated unsafe requests must pass CSRF.

    Scopes are checked by each route's ``require_scope`` declaration (``server.auth.scopes``).
    """
    principal = authenticate(request, ctx, session)
    if principal is not None and principal.via == "cookie" and request.method in UNSAFE_METHODS:
        check_csrf(request)
    return principal


def get_principal(principal: Annotated[Principal | None, Depends(get_principal_or_none)]) -> Principal:
    if principal is None:
        raise NotAuthenticated()
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def get_current_user(principal: PrincipalDep) -> User:
    return principal.user


CurrentUser = Annotated[User, Depends(get_current_user)]


def get_admin(principal: PrincipalDep) -> User:
    if not principal.is_admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "admin role required")
    return principal.user


AdminUser = Annotated[User, Depends(get_admin)]
