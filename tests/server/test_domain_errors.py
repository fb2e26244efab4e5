"""Domain errors raised anywhere map to one HTTP answer each (status, ``detail``, extra members, headers)."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from server.errors import install_error_handlers
from server.exceptions import (
    Conflict,
    DomainError,
    Forbidden,
    Invalid,
    NotFound,
    RateLimited,
    TooLarge,
    Unauthenticated,
    Unsupported,
)


def _client(exc: DomainError) -> TestClient:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/api/boom")
    @app.get("/page")
    def boom() -> None:
        raise exc

    return TestClient(app, raise_server_exceptions=False)


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (NotFound("case 3 not found"), 404),
        (Conflict("job 2 is running"), 409),
        (Forbidden("not yours"), 403),
        (Invalid("bad label"), 422),
        (TooLarge("too big"), 413),
        (Unsupported("unsupported type"), 415),
        (DomainError("something"), 400),
    ],
)
def test_status_and_detail(exc: DomainError, code: int) -> None:
    response = _client(exc).get("/api/boom")
    assert response.status_code == code
    assert response.json() == {"detail": exc.detail}


def test_field_errors_and_extra_members() -> None:
    errors = [{"loc": ["body", "settings", "threshold"], "msg": "too high", "type": "less_than_equal"}]
    response = _client(Invalid(errors)).get("/api/boom")
    assert response.status_code == 422 and response.json() == {"detail": errors}
    response = _client(Conflict("a retrain is running (job 12)", extra={"job": {"id": 12}})).get("/api/boom")
    assert response.status_code == 409
    assert response.json() == {"detail": "a retrain is running (job 12)", "job": {"id": 12}}


def test_auth_errors_carry_their_headers() -> None:
    limited = _client(RateLimited("retry in 7 s", retry_after_s=7)).get("/api/boom")
    assert limited.status_code == 429 and limited.headers["retry-after"] == "7"
    client = _client(Unauthenticated("incorrect username or password"))
    api = client.get("/api/boom")
    assert api.status_code == 401 and api.headers["www-authenticate"] == "Bearer"
    page = client.get("/page", headers={"accept": "text/html"}, follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/login?next=/page"
