"""Authentication: tokens, cookie login with CSRF, rate limiting, audit rows."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import select

from server.db import Database
from server.models import AuditLog
from tests.conftest import PASSWORD, Users, token_for


def test_health_needs_no_auth(app_client: TestClient) -> None:
    response = app_client.get("/api/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response.json()["database"] == "ok"


def test_token_flow_and_me(app_client: TestClient, users: Users) -> None:
    token = token_for(app_client, "alice")
    me = app_client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
    assert me.json()["username"] == "alice"
    assert me.json()["role"] == "reader"


def test_wrong_password_is_401_and_audited(app_client: TestClient, users: Users, db: Database) -> None:
    response = app_client.post("/api/auth/token", data={"username": "alice", "password": "nope-nope"})
    assert response.status_code == 401
    assert "incorrect" in response.json()["detail"]
    with db.session() as session:
        actions = session.scalars(select(AuditLog.action)).all()
    assert "login_failed" in actions


def test_login_is_audited(app_client: TestClient, users: Users, db: Database) -> None:
    token_for(app_client, "admin")
    with db.session() as session:
        rows = session.scalars(select(AuditLog).where(AuditLog.action == "login")).all()
    assert [r.user_id for r in rows] == [users.admin.id]


def test_bad_and_tampered_tokens_are_rejected(app_client: TestClient, users: Users) -> None:
    token = token_for(app_client, "alice")
    for bad in ("garbage", token[:-2] + ("aa" if not token.endswith("aa") else "bb")):
        response = app_client.get("/api/auth/me", headers={"Authorization": f"Bearer {bad}"})
        assert response.status_code == 401
        assert response.json()["detail"] == "invalid or expired token"


def test_password_change_revokes_tokens(app_client: TestClient, users: Users) -> None:
    admin = {"Authorization": f"Bearer {token_for(app_client, 'admin')}"}
    alice = {"Authorization": f"Bearer {token_for(app_client, 'alice')}"}
    response = app_client.patch(
        f"/api/users/{users.reader.id}", json={"password": "another-long-pw"}, headers=admin
    )
    assert response.status_code == 200
    assert app_client.get("/api/auth/me", headers=alice).status_code == 401
    assert token_for(app_client, "alice", "another-long-pw")


def test_login_rate_limited(app_client: TestClient, users: Users) -> None:
    for _ in range(5):
        assert (
            app_client.post("/api/auth/token", data={"username": "bob", "password": "wrong-pw"}).status_code
            == 401
        )
    limited = app_client.post("/api/auth/token", data={"username": "bob", "password": PASSWORD})
    assert limited.status_code == 429
    assert "too many failed logins" in limited.json()["detail"]
    assert int(limited.headers["Retry-After"]) > 0


def test_unknown_scope_rejected_and_export_scope_admin_only(app_client: TestClient, users: Users) -> None:
    r = app_client.post("/api/auth/token", data={"username": "alice", "password": PASSWORD, "scope": "root"})
    assert r.status_code == 400 and "root" in r.json()["detail"]
    r = app_client.post(
        "/api/auth/token", data={"username": "alice", "password": PASSWORD, "scope": "export"}
    )
    assert r.status_code == 403
    assert token_for(app_client, "admin", scope="read export")


def test_read_only_token_cannot_write(app_client: TestClient, users: Users) -> None:
    token = token_for(app_client, "admin", scope="read")
    r = app_client.post(
        "/api/datasets",
        json={"name": "x", "label_set": ["a", "b"]},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 403
    assert "write" in r.json()["detail"]


def test_write_only_token_cannot_read(app_client: TestClient, users: Users) -> None:
    token = token_for(app_client, "admin", scope="write")
    r = app_client.get("/api/datasets", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 403
    assert "'read' scope" in r.json()["detail"]


def test_token_scopes_follow_the_users_current_role(app_client: TestClient, users: Users) -> None:
    """A token issued to an admin stops carrying admin-only scopes once the user is demoted."""
    admin = {"Authorization": f"Bearer {token_for(app_client, 'admin', scope='read write export')}"}
    app_client.patch(f"/api/users/{users.reader2.id}", json={"role": "admin"}, headers=admin)
    bob = {"Authorization": f"Bearer {token_for(app_client, 'bob', scope='read write export')}"}
    assert app_client.get("/api/models/1/export?format=onnx", headers=bob).status_code == 404
    app_client.patch(f"/api/users/{users.reader2.id}", json={"role": "reader"}, headers=admin)
    refused = app_client.get("/api/models/1/export?format=onnx", headers=bob)
    assert refused.status_code == 403 and "'export' scope" in refused.json()["detail"]
    r = app_client.post("/api/auth/token", data={"username": "bob", "password": PASSWORD, "scope": "export"})
    assert r.status_code == 403


def _csrf_from(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "login page has no CSRF field"
    return match.group(1)


def test_cookie_login_requires_csrf_and_protects_unsafe_requests(
    app_client: TestClient, users: Users
) -> None:
    page = app_client.get("/login")
    assert page.status_code == 200
    csrf = _csrf_from(page.text)
    forged = app_client.post(
        "/login",
        data={"username": "admin", "password": PASSWORD, "csrf_token": "forged"},
        follow_redirects=False,
    )
    assert forged.status_code == 403
    ok = app_client.post(
        "/login", data={"username": "admin", "password": PASSWORD, "csrf_token": csrf}, follow_redirects=False
    )
    assert ok.status_code == 303 and ok.headers["location"] == "/"
    me = app_client.get("/api/auth/me")
    assert me.status_code == 200
    session_csrf = me.json()["csrf_token"]
    body = {"name": "cookie-ds", "label_set": ["a", "b"]}
    assert app_client.post("/api/datasets", json=body).status_code == 403
    created = app_client.post("/api/datasets", json=body, headers={"X-CSRF-Token": session_csrf})
    assert created.status_code == 201
    out = app_client.post("/logout", headers={"X-CSRF-Token": session_csrf}, follow_redirects=False)
    assert out.status_code == 303
    assert app_client.get("/api/auth/me").status_code == 401


def test_login_redirect_stays_on_site(app_client: TestClient, users: Users) -> None:
    csrf = _csrf_from(app_client.get("/login").text)
    r = app_client.post(
        "/login",
        data={"username": "admin", "password": PASSWORD, "csrf_token": csrf, "next": "//evil.example/x"},
        follow_redirects=False,
    )
    assert r.headers["location"] == "/"


def test_pages_redirect_anonymous_to_login(app_client: TestClient) -> None:
    r = app_client.get("/cases", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
