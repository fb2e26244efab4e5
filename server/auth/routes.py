"""Token endpoint for scripts and the cookie login/logout used by the browser."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request, status
from fastapi.responses import RedirectResponse
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel

from server.auth import service
from server.auth.scopes import DEFAULT_TOKEN_SCOPES, KNOWN_SCOPES, ROLE_SCOPES, public_route, require_scope
from server.deps import ContextDep, PrincipalDep, SessionDep
from server.exceptions import Unauthenticated

router = APIRouter(tags=["auth"])


class TokenPublic(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    scopes: list[str]


class MePublic(BaseModel):
    id: int
    username: str
    display_name: str
    role: str
    csrf_token: str | None


@router.post("/api/auth/token", response_model=TokenPublic, dependencies=[public_route()])
def issue_token(
    request: Request,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    ctx: ContextDep,
    session: SessionDep,
) -> TokenPublic:
    """OAuth2 password flow. ``scope`` may name read, write, export, predict (default: read write
    predict); export is for admins only."""
    requested = frozenset(form.scopes) or DEFAULT_TOKEN_SCOPES
    unknown = requested - KNOWN_SCOPES
    if unknown:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"unknown scopes: {', '.join(sorted(unknown))}")
    user = service.login(session, ctx, request, form.username, form.password)
    refused = requested - ROLE_SCOPES[user.role]
    if refused:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"a {user.role.value} cannot request the scope(s): {', '.join(sorted(refused))}",
        )
    token = ctx.tokens.issue(user.id, user.token_version, requested)
    return TokenPublic(access_token=token, expires_in=ctx.tokens.ttl_s, scopes=sorted(requested))


@router.get("/api/auth/me", response_model=MePublic, dependencies=[require_scope("read")])
def me(request: Request, principal: PrincipalDep) -> MePublic:
    user = principal.user
    csrf = request.session.get("csrf") if principal.via == "cookie" else None
    return MePublic(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        role=user.role.value,
        csrf_token=csrf,
    )


def ensure_csrf(request: Request) -> str:
    """The session's CSRF token, created on first use."""
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return str(token)


def _safe_next(target: str | None) -> str:
    # Only same-site relative paths: never redirect to another host after login.
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return "/"


@router.post("/login", include_in_schema=False, dependencies=[public_route()])
def login_form(
    request: Request,
    ctx: ContextDep,
    session: SessionDep,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    csrf_token: Annotated[str, Form()],
    next: Annotated[str | None, Form()] = None,
) -> RedirectResponse:
    expected = request.session.get("csrf")
    if not expected or not secrets.compare_digest(str(expected), csrf_token):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "login form expired or forged (CSRF check failed); reload the page"
        )
    try:
        user = service.login(session, ctx, request, username, password)
    except Unauthenticated:
        return RedirectResponse(f"/login?error=1&next={_safe_next(next)}", status_code=303)
    request.session.clear()
    request.session.update({"uid": user.id, "tv": user.token_version, "csrf": secrets.token_urlsafe(32)})
    return RedirectResponse(_safe_next(next), status_code=303)


@router.post("/logout", include_in_schema=False, dependencies=[require_scope("read")])
def logout(request: Request, _principal: PrincipalDep) -> RedirectResponse:
    request.session.clear()
    return RedirectResponse("/login", status_code=303)
