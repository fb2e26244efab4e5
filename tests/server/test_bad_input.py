"""No route answers 500 to malformed input: every failure is a 4xx with a JSON ``detail``."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Users
from tests.support.routes import app_routes

GARBAGE_BODIES: list[dict[str, object]] = [
    {"content": b"{not json", "headers": {"Content-Type": "application/json"}},
    {"json": [1, 2, 3]},
    {"json": {"name": None, "label_set": "x", "reader_ids": ["a"], "kind": 5, "case_id": "abc"}},
    {"json": {"description": "x" * 10, "settings": [], "password": 5}},
    {"content": b"\x00\xff" * 50, "headers": {"Content-Type": "multipart/form-data; boundary=zzz"}},
]
GARBAGE_IDS = ["0", "-1", "999999999", "abc", "1.5", "%20"]


def _routes(client: TestClient) -> list[tuple[str, str]]:
    routes = app_routes(client.app)  # type: ignore[arg-type]
    return sorted(r for r in routes if r[0] != "WS" and r[1].startswith("/api"))


def _fill(path: str, value: str) -> str:
    while "{" in path:
        start = path.index("{")
        path = path[:start] + value + path[path.index("}") + 1 :]
    return path


@pytest.mark.parametrize("role", ["admin", "alice"])
def test_no_route_returns_500_on_garbage(
    app_client: TestClient, users: Users, auth: Callable[[str], dict[str, str]], role: str
) -> None:
    headers = auth(role)
    failures = []
    for method, path in _routes(app_client):
        for ident in GARBAGE_IDS if "{" in path else ["-"]:
            url = _fill(path, ident)
            for body in GARBAGE_BODIES if method in {"POST", "PUT", "PATCH"} else [{}]:
                kwargs = dict(body)
                extra = kwargs.pop("headers", {})
                response = app_client.request(
                    method,
                    url + "?limit=-5&offset=x&format=nope&center=nan",
                    headers={**headers, **extra},
                    **kwargs,
                )
                if response.status_code >= 500:
                    failures.append(f"{method} {url} -> {response.status_code} {response.text[:200]}")
                elif response.status_code >= 400:
                    assert "detail" in response.json(), f"{method} {url} error without detail"
    assert not failures, "\n".join(failures)
