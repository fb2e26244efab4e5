"""Failed-login backoff is per account and client: guessing locks out the guesser, nobody else."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from server.app import create_app
from server.auth.ratelimit import LoginRateLimiter
from server.db import Database
from server.models import AuditLog
from server.settings import Settings
from tests.conftest import PASSWORD, Users


def _login(client: TestClient, username: str, password: str, **headers: str) -> int:
    response = client.post(
        "/api/auth/token", data={"username": username, "password": password}, headers=headers
    )
    if response.status_code == 429:
        assert int(response.headers["Retry-After"]) > 0
        assert "too many failed logins" in response.json()["detail"]
    return response.status_code


@pytest.fixture
def app(settings: Settings, users: Users) -> Iterator[FastAPI]:
    application = create_app(settings.model_copy(update={"trusted_proxies": ["10.0.0.9", "fd00::/8"]}))
    yield application
    application.state.ctx.db.dispose()


def _client(app: FastAPI, address: str) -> TestClient:
    return TestClient(app, base_url="http://localhost", client=(address, 40000))


def test_fifty_wrong_logins_lock_only_that_account_from_that_client(app: FastAPI) -> None:
    a, b = _client(app, "10.0.0.1"), _client(app, "10.0.0.2")
    statuses = [_login(a, "alice", "wrong-password") for _ in range(50)]
    assert statuses[:5] == [401] * 5  # settings fixture: login_attempts=5
    assert set(statuses[5:]) == {429}
    # The guesser's client waits, even with the right password ...
    assert _login(a, "alice", PASSWORD) == 429
    # ... but the admin signs in from the same address, and alice from another one.
    assert _login(a, "admin", PASSWORD) == 200
    assert _login(b, "alice", PASSWORD) == 200
    assert _login(b, "bob", PASSWORD) == 200


def test_forwarded_for_names_the_client_only_behind_a_trusted_proxy(app: FastAPI, db: Database) -> None:
    proxy = _client(app, "10.0.0.9")
    for _ in range(5):
        assert _login(proxy, "alice", "wrong-password", **{"X-Forwarded-For": "203.0.113.5"}) == 401
    assert _login(proxy, "alice", PASSWORD, **{"X-Forwarded-For": "203.0.113.5"}) == 429
    # Another user behind the same proxy is a different client.
    assert _login(proxy, "alice", PASSWORD, **{"X-Forwarded-For": "203.0.113.6"}) == 200
    # A client cannot escape its backoff by writing its own X-Forwarded-For: the proxy appends
    # the real address on the right, and only that hop is believed.
    forged = {"X-Forwarded-For": "198.51.100.1, 203.0.113.5"}
    assert _login(proxy, "alice", PASSWORD, **forged) == 429
    with db.session() as session:
        addresses = set(session.scalars(select(AuditLog.client_ip).where(AuditLog.action == "login_failed")))
    assert addresses == {"203.0.113.5"}


def test_forwarded_for_from_an_untrusted_peer_is_ignored(app: FastAPI) -> None:
    direct = _client(app, "10.0.0.1")
    for i in range(5):
        assert _login(direct, "bob", "wrong-password", **{"X-Forwarded-For": f"203.0.113.{i}"}) == 401
    assert _login(direct, "bob", PASSWORD, **{"X-Forwarded-For": "203.0.113.99"}) == 429


def test_trusted_proxies_setting_is_parsed_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCGIP_TRUSTED_PROXIES", "10.0.0.0/8, ::1")
    settings = Settings()
    assert settings.trusted_proxies == ["10.0.0.0/8", "::1"]
    assert len(settings.trusted_proxy_networks) == 2
    monkeypatch.setenv("MCGIP_TRUSTED_PROXIES", "10.0.0.0/8,proxy.local")
    with pytest.raises(ValueError, match="proxy.local"):
        Settings()


def test_limiter_forgets_the_oldest_keys_beyond_its_bound() -> None:
    limiter = LoginRateLimiter(max_failures=1, window_s=60, max_tracked=3)
    for name in ("u1", "u2", "u3", "u4"):
        limiter.record_failure(limiter.key(name, "10.0.0.1"))
    assert limiter.retry_after(limiter.key("u1", "10.0.0.1")) is None
    assert limiter.retry_after(limiter.key("u4", "10.0.0.1")) is not None
    assert limiter.retry_after(limiter.key("U4 ", "10.0.0.1")) is not None
    assert limiter.retry_after(limiter.key("u4", "10.0.0.2")) is None
