"""Token scopes and the per-route scope declaration every HTTP route carries.

Every route names what it needs with exactly one of these in its ``dependencies``:

- ``require_scope("read" | "write" | "export" | "predict")``: an authenticated caller whose
  token (or browser session) carries that scope. Admins are checked like everyone else: an admin
  token issued with ``scope=read`` cannot write or export.
- ``page_scope("read")``: the same for server-rendered pages, which send anonymous visitors to the
  login page themselves instead of answering 401.
- ``public_route()``: no authentication at all (health, login, metrics).

Role checks (``AdminUser``) come on top of the scope. ``tests/server/test_authz_matrix.py``
enumerates the application's routes and fails for a route without a declaration.
"""

from __future__ import annotations

import enum
from functools import cache
from typing import TYPE_CHECKING, Any

from fastapi import Depends, HTTPException, status
from fastapi.routing import APIRoute

from server.models import Role

if TYPE_CHECKING:
    from server.deps import Principal


class Scope(enum.StrEnum):
    read = "read"
    write = "write"
    export = "export"
    predict = "predict"


#: Every scope a token can carry.
KNOWN_SCOPES = frozenset(s.value for s in Scope)
#: Scopes each role may hold; a token is always cut down to its user's current role.
ROLE_SCOPES: dict[Role, frozenset[str]] = {
    Role.reader: frozenset({Scope.read, Scope.write, Scope.predict}),
    Role.admin: KNOWN_SCOPES,
}
#: Scopes of a token requested without ``scope`` (export must always be asked for).
DEFAULT_TOKEN_SCOPES = frozenset({Scope.read.value, Scope.write.value, Scope.predict.value})
#: WebSocket routes authenticate in their handshake handler; the scope each of them checks.
WEBSOCKET_SCOPES: dict[str, Scope] = {"/ws/gaze": Scope.write, "/ws/tracker": Scope.write}


class ScopeRequirement:
    """Dependency that resolves the caller and checks one scope (``optional``: anonymous passes)."""

    def __init__(self, scope: Scope, *, optional: bool) -> None:
        self.scope = scope
        self.optional = optional

    def __repr__(self) -> str:
        return f"ScopeRequirement({self.scope.value!r}, optional={self.optional})"

    def check(self, principal: Principal | None) -> Principal | None:
        if principal is not None and self.scope not in principal.scopes:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"this request needs the '{self.scope.value}' scope, which your token lacks",
            )
        return principal


class PublicRoute:
    """Marker dependency: the route is served without authentication."""

    def __call__(self) -> None:
        return None


_PUBLIC = PublicRoute()


@cache
def _requirement(scope: Scope, optional: bool) -> Any:
    # Imported here: server.deps imports this module for the vocabulary.
    from server.deps import get_principal, get_principal_or_none

    requirement = ScopeRequirement(scope, optional=optional)
    if optional:

        def optional_check(principal: Any = Depends(get_principal_or_none)) -> Any:
            return requirement.check(principal)

        call: Any = optional_check
    else:

        def check(principal: Any = Depends(get_principal)) -> Any:
            return requirement.check(principal)

        call = check
    call.scope_requirement = requirement
    return call


def require_scope(scope: str) -> Any:
    """``dependencies=[require_scope("read")]``: the caller must be signed in and hold ``scope``."""
    return Depends(_requirement(Scope(scope), False))


def page_scope(scope: str) -> Any:
    """Like ``require_scope`` for HTML pages: anonymous visitors reach the page (it redirects them)."""
    return Depends(_requirement(Scope(scope), True))


def public_route() -> Any:
    """``dependencies=[public_route()]``: served without authentication."""
    return Depends(_PUBLIC)


def declared_access(route: APIRoute) -> list[ScopeRequirement | PublicRoute]:
    """The scope declarations found among a route's dependencies (depth first)."""
    found: list[ScopeRequirement | PublicRoute] = []
    stack = list(route.dependant.dependencies)
    while stack:
        dep = stack.pop(0)
        if isinstance(dep.call, PublicRoute):
            found.append(dep.call)
        requirement = getattr(dep.call, "scope_requirement", None)
        if isinstance(requirement, ScopeRequirement):
            found.append(requirement)
        stack.extend(dep.dependencies)
    return found
