"""Domain errors raised by services, the worker and the CLI (no FastAPI, no torch).

A service says *what* went wrong; :mod:`server.errors` is the one place that maps each class to an
HTTP status for the web process. ``detail`` is safe to show to the client and to log. ``extra`` holds
additional JSON members of the error body (e.g. the conflicting job).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class DomainError(Exception):
    """Base class of every domain error.

    Attributes:
        detail: a message naming the problem, or (for :class:`Invalid`) a list of
            ``{"loc", "msg", "type"}`` entries in the API's validation-error format.
        extra: more members of the JSON error body beside ``detail``.
    """

    def __init__(
        self, detail: str | Sequence[dict[str, Any]], *, extra: dict[str, Any] | None = None
    ) -> None:
        super().__init__(detail if isinstance(detail, str) else "invalid input")
        self.detail = detail if isinstance(detail, str) else list(detail)
        self.extra = dict(extra or {})


class NotFound(DomainError):
    """The addressed thing does not exist, or the caller may not know it exists (HTTP 404)."""


class Conflict(DomainError):
    """The request contradicts the current state, e.g. a duplicate name or a running job (HTTP 409)."""


class Forbidden(DomainError):
    """The caller is known but not allowed to do this (HTTP 403)."""


class Invalid(DomainError):
    """The input is well-formed but not acceptable (HTTP 422)."""


class Unauthenticated(DomainError):
    """Missing or wrong credentials (HTTP 401)."""


class RateLimited(DomainError):
    """Too many attempts; ``retry_after_s`` says when to try again (HTTP 429 with Retry-After)."""

    def __init__(self, detail: str, *, retry_after_s: int) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class Unavailable(DomainError):
    """A bounded resource is busy right now; ``retry_after_s`` says when to try again (HTTP 503 with
    Retry-After)."""

    def __init__(self, detail: str, *, retry_after_s: int) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class TooLarge(DomainError):
    """An upload or image over a configured limit (HTTP 413)."""


class Unsupported(DomainError):
    """Content of a type the product does not handle (HTTP 415)."""


def field_errors(errors: Sequence[Any], prefix: Sequence[str | int] = ()) -> list[dict[str, Any]]:
    """Pydantic ``ValidationError.errors()`` as the API's ``{"loc", "msg", "type"}`` list under ``prefix``."""
    return [{"loc": [*prefix, *err["loc"]], "msg": err["msg"], "type": err["type"]} for err in errors]
