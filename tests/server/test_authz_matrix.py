"""Every route x {anonymous, reader, admin} -> expected status, and every route's scope.

The matrix must name every route the application serves: a new route without an entry fails
``test_matrix_covers_every_route``. Path parameters are filled from ``World`` (a case on the
reader's worklist, the reader's id, ...). Roles are tried in the order anonymous, reader, admin so
an admin's state change never hides a reader's outcome. The reader holds every scope a reader may;
the admin's token carries *only* the scope the route declares, so the declaration is shown to be
enough, and ``test_every_route_enforces_its_scope`` shows it is needed: generated from the app's
routes, it fails for a route that declares no scope.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from fastapi.routing import APIRoute, APIWebSocketRoute, iter_route_contexts
from fastapi.testclient import TestClient
from PIL import Image
from starlette.websockets import WebSocketDisconnect

from server.auth.scopes import (
    KNOWN_SCOPES,
    WEBSOCKET_SCOPES,
    PublicRoute,
    ScopeRequirement,
    declared_access,
)
from tests.conftest import Users, token_for
from tests.support.routes import app_routes


def _png() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.arange(64 * 64, dtype=np.uint16).reshape(64, 64)).save(buf, format="PNG")
    return buf.getvalue()


@dataclass
class World:
    """Objects the matrix's requests refer to."""

    users: Users
    dataset_id: int
    case_id: int
    ids: dict[str, int] = field(default_factory=dict)

    def fill(self, path: str) -> str:
        values = {
            "dataset_id": self.dataset_id,
            "case_id": self.case_id,
            "user_id": self.users.reader2.id,
            "reader_id": self.users.reader.id,
            **self.ids,
        }
        for key, value in values.items():
            path = path.replace("{" + key + "}", str(value))
        return path


RequestKw = Callable[[World], dict[str, Any]]


@dataclass(frozen=True)
class Expect:
    anonymous: int
    reader: int
    admin: int
    request: RequestKw = lambda _w: {}
    #: Extra set-up run once before the roles are tried (e.g. create a session for the reader).
    setup: Callable[[TestClient, World, Callable[[str], dict[str, str]]], None] | None = None


def _json(body: dict[str, Any]) -> RequestKw:
    return lambda _w: {"json": body}


def _upload(w: World) -> dict[str, Any]:
    return {"files": {"file": ("x.png", _png(), "image/png")}, "data": {"dataset_id": str(w.dataset_id)}}


def _assignment(w: World) -> dict[str, Any]:
    return {"json": {"reader_ids": [w.users.reader2.id]}}


def _finished_job(client: TestClient, w: World, headers_for: Callable[[str], dict[str, str]]) -> None:
    """A cancelled (so finished) job, so its event stream ends at once."""
    body = {"kind": "pairs", "dataset_id": w.dataset_id}
    job = client.post("/api/jobs", json=body, headers=headers_for("admin"))
    assert job.status_code == 201, job.text
    w.ids["job_id"] = job.json()["id"]
    client.post(f"/api/jobs/{w.ids['job_id']}/cancel", headers=headers_for("admin"))


def _session_body(w: World) -> dict[str, Any]:
    display = {"screen_w": 800, "screen_h": 600, "dpr": 1}
    return {"json": {"case_id": w.case_id, "source": "mouse", "display_info": display}}


def _reader_session(client: TestClient, w: World, headers_for: Callable[[str], dict[str, str]]) -> None:
    """An open reading session of the reader on the world's case."""
    made = client.post("/api/sessions", headers=headers_for("reader"), **_session_body(w))
    assert made.status_code == 201, made.text
    w.ids["session_id"] = made.json()["id"]


def _finished_reader_session(
    client: TestClient, w: World, headers_for: Callable[[str], dict[str, str]]
) -> None:
    """A finished (labelled) reading session of the reader on the world's case."""
    _reader_session(client, w, headers_for)
    done = client.post(
        f"/api/sessions/{w.ids['session_id']}/finish", headers=headers_for("reader"), json={"label": "a"}
    )
    assert done.status_code == 200, done.text


def _model(client: TestClient, w: World, _headers_for: Callable[[str], dict[str, str]]) -> None:
    """A registered model version with tiny artifacts (a real ONNX graph for embedding)."""
    from server.storage import BlobStore
    from tests.server.jobs.models_support import make_model_version

    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    w.ids["model_id"] = make_model_version(ctx.db, BlobStore(ctx.settings.blob_dir), w.dataset_id)


def _evaluated_model(client: TestClient, w: World, _headers_for: Callable[[str], dict[str, str]]) -> None:
    """A registered model version carrying a cross-validated evaluation."""
    from server.storage import BlobStore
    from tests.server.jobs.models_support import make_model_version, sample_evaluation

    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    w.ids["model_id"] = make_model_version(
        ctx.db, BlobStore(ctx.settings.blob_dir), w.dataset_id, evaluation=sample_evaluation()
    )


def _diagnosis_model(client: TestClient, w: World, _headers_for: Callable[[str], dict[str, str]]) -> None:
    """A registered version with a diagnosis head (its ONNX export has ``probabilities``)."""
    from server.storage import BlobStore
    from tests.server.jobs.models_support import make_diagnosis_version

    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    w.ids["version"] = make_diagnosis_version(ctx.db, BlobStore(ctx.settings.blob_dir), w.dataset_id)


def _second_read(client: TestClient, w: World, headers_for: Callable[[str], dict[str, str]]) -> None:
    """A finished session of the reader on a dataset with the second read on and an active model
    with a head, and its second read already shown."""
    from server.models import Dataset, ModelVersion

    _finished_reader_session(client, w, headers_for)
    _diagnosis_model(client, w, headers_for)
    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    with ctx.db.session() as session:
        dataset = session.get(Dataset, w.dataset_id)
        dataset.settings = {**(dataset.settings or {}), "second_read": True}
        session.get(ModelVersion, w.ids["version"]).is_active = True
    shown = client.post(f"/api/sessions/{w.ids['session_id']}/second-read", headers=headers_for("reader"))
    assert shown.status_code == 200, shown.text


def _case_json(w: World) -> dict[str, Any]:
    return {"json": {"case_id": w.case_id}}


def _pairs_job(w: World) -> dict[str, Any]:
    return {"json": {"kind": "pairs", "dataset_id": w.dataset_id}}


def _onnx_format(_w: World) -> dict[str, Any]:
    return {"params": {"format": "onnx"}}


def _case_form(w: World) -> dict[str, Any]:
    return {"data": {"case_id": w.case_id}}


#: (method, path template) -> expected statuses. Extend it with every new route.
MATRIX: dict[tuple[str, str], Expect] = {
    ("GET", "/api/health"): Expect(200, 200, 200),
    ("GET", "/api/auth/me"): Expect(401, 200, 200),
    ("GET", "/api/users"): Expect(401, 403, 200),
    ("POST", "/api/users"): Expect(
        401, 403, 201, _json({"username": "carol", "password": "long-enough-pw", "role": "reader"})
    ),
    ("PATCH", "/api/users/{user_id}"): Expect(401, 403, 200, _json({"display_name": "Bob B."})),
    ("GET", "/api/datasets"): Expect(401, 200, 200),
    ("POST", "/api/datasets"): Expect(401, 403, 201, _json({"name": "new", "label_set": ["a", "b"]})),
    ("GET", "/api/datasets/{dataset_id}"): Expect(401, 200, 200),
    ("PATCH", "/api/datasets/{dataset_id}"): Expect(401, 403, 200, _json({"description": "d"})),
    ("POST", "/api/cases"): Expect(401, 403, 201, _upload),
    ("GET", "/api/cases"): Expect(401, 200, 200),
    ("GET", "/api/cases/{case_id}"): Expect(401, 200, 200),
    ("DELETE", "/api/cases/{case_id}"): Expect(401, 403, 204),
    ("GET", "/api/cases/{case_id}/image"): Expect(401, 200, 200),
    ("GET", "/api/cases/{case_id}/thumbnail"): Expect(401, 200, 200),
    ("GET", "/api/cases/{case_id}/annotations"): Expect(401, 403, 200),
    ("GET", "/api/cases/{case_id}/pixels"): Expect(401, 200, 200),
    # A PNG case has no DICOM: the admin passes authorization and then gets 404.
    ("GET", "/api/cases/{case_id}/dicom"): Expect(401, 403, 404),
    ("POST", "/api/cases/{case_id}/assignments"): Expect(401, 403, 201, _assignment),
    ("DELETE", "/api/cases/{case_id}/assignments/{reader_id}"): Expect(401, 403, 204),
    ("GET", "/api/worklist"): Expect(401, 200, 200),
    # Skipping acts on the caller's own worklist; the admin has none, so the case is not found.
    ("PUT", "/api/worklist/{case_id}/skip"): Expect(401, 200, 404),
    ("DELETE", "/api/worklist/{case_id}/skip"): Expect(401, 200, 404),
    ("POST", "/api/jobs"): Expect(401, 403, 201, _pairs_job),
    ("GET", "/api/jobs"): Expect(401, 403, 200),
    ("GET", "/api/jobs/{job_id}"): Expect(401, 403, 200, setup=_finished_job),
    ("POST", "/api/jobs/{job_id}/cancel"): Expect(401, 403, 200, setup=_finished_job),
    ("GET", "/api/jobs/{job_id}/events"): Expect(401, 403, 200, setup=_finished_job),
    ("GET", "/api/datasets/{dataset_id}/retrain-policy"): Expect(401, 403, 200),
    ("PUT", "/api/datasets/{dataset_id}/retrain-policy"): Expect(
        401, 403, 200, _json({"min_new_sessions": 5})
    ),
    ("GET", "/api/models"): Expect(401, 200, 200),
    ("GET", "/api/models/{model_id}"): Expect(401, 200, 200, setup=_model),
    ("GET", "/api/models/{model_id}/card"): Expect(401, 200, 200, setup=_model),
    ("GET", "/api/models/{model_id}/evaluation"): Expect(401, 200, 200, setup=_evaluated_model),
    ("GET", "/api/models/{model_id}/export"): Expect(401, 403, 200, _onnx_format, _model),
    ("POST", "/api/models/{model_id}/promote"): Expect(401, 403, 200, setup=_model),
    ("POST", "/api/models/{model_id}/embed"): Expect(401, 200, 200, _case_form, _model),
    ("GET", "/api/cases/{case_id}/similar"): Expect(401, 200, 200),
    # Readers predict on their own worklist's cases (the world's case is on it).
    ("POST", "/api/models/{version}/predict"): Expect(401, 200, 200, _case_json, _diagnosis_model),
    # The second read belongs to the session's reader; admins may look at it and at the statistics.
    ("POST", "/api/sessions/{session_id}/second-read"): Expect(401, 200, 404, setup=_second_read),
    ("GET", "/api/sessions/{session_id}/second-read"): Expect(401, 200, 200, setup=_second_read),
    ("PUT", "/api/sessions/{session_id}/second-read"): Expect(
        401, 200, 403, _json({"choice": "agree"}), _second_read
    ),
    ("GET", "/api/stats/second-read"): Expect(
        401, 403, 200, lambda w: {"params": {"dataset_id": w.dataset_id}}
    ),
    ("GET", "/metrics"): Expect(200, 200, 200),
    # Reading sessions: readers see and change only their own; changes are the session reader's alone.
    ("POST", "/api/sessions"): Expect(401, 201, 201, _session_body),
    ("GET", "/api/sessions"): Expect(401, 200, 200),
    ("GET", "/api/sessions/{session_id}"): Expect(401, 200, 200, setup=_reader_session),
    ("PATCH", "/api/sessions/{session_id}"): Expect(
        401, 200, 403, _json({"source_info": {"calibration": 1}}), _reader_session
    ),
    ("POST", "/api/sessions/{session_id}/finish"): Expect(
        401, 200, 403, _json({"label": "a"}), _reader_session
    ),
    ("PUT", "/api/sessions/{session_id}/label"): Expect(
        401, 200, 403, _json({"label": "a"}), _finished_reader_session
    ),
    # Overriding the quality gate is an admin's decision (the session, without gaze, is flagged).
    ("PUT", "/api/sessions/{session_id}/quality-override"): Expect(
        401, 403, 200, _json({"override": True}), _finished_reader_session
    ),
    ("GET", "/api/sessions/{session_id}/samples"): Expect(401, 200, 200, setup=_reader_session),
    ("GET", "/api/sessions/{session_id}/events"): Expect(401, 200, 200, setup=_reader_session),
    ("GET", "/api/sessions/{session_id}/heatmap"): Expect(401, 200, 200, setup=_reader_session),
    ("GET", "/api/cases/{case_id}/heatmap"): Expect(401, 200, 200),
    # Pages: anonymous users are sent to the login page.
    ("GET", "/"): Expect(303, 200, 200),
    ("GET", "/login"): Expect(200, 200, 200),
    ("GET", "/favicon.ico"): Expect(200, 200, 200),
    # Admin console pages: readers get a 403 page.
    ("GET", "/admin"): Expect(303, 303, 303),
    ("GET", "/admin/users"): Expect(303, 403, 200),
    ("GET", "/admin/datasets"): Expect(303, 403, 200),
    ("GET", "/admin/assignments"): Expect(303, 403, 200),
    ("POST", "/api/assignments/bulk"): Expect(
        401, 403, 201, lambda w: {"json": {"dataset_id": w.dataset_id, "reader_ids": [w.users.reader2.id]}}
    ),
    ("GET", "/admin/upload"): Expect(303, 403, 200),
    ("POST", "/api/cases/bulk"): Expect(
        401,
        403,
        200,
        lambda w: {
            "files": {"files": ("x.png", _png(), "image/png")},
            "data": {"dataset_id": str(w.dataset_id)},
        },
    ),
    ("GET", "/api/datasets-settings-schema"): Expect(401, 403, 200),
    ("GET", "/cases"): Expect(303, 200, 200),
    ("GET", "/cases/{case_id}"): Expect(303, 200, 200),
    ("GET", "/calibrate"): Expect(303, 200, 200),
    # Reading and review pages render for any signed-in user; the data API decides what they show.
    ("GET", "/read/{case_id}"): Expect(303, 200, 200),
    ("GET", "/review"): Expect(303, 200, 200),
    ("GET", "/review/sessions/{session_id}"): Expect(303, 200, 200, setup=_reader_session),
    ("GET", "/review/cases/{case_id}"): Expect(303, 200, 200),
    # Admin dashboard: statistics, the retraining form's check and the page (readers get a 403 page).
    ("GET", "/api/stats/gaze"): Expect(401, 403, 200),
    ("GET", "/api/stats/pairs"): Expect(401, 403, 200, lambda w: {"params": {"dataset_id": w.dataset_id}}),
    ("POST", "/api/dashboard/retrain-plan"): Expect(
        401, 403, 200, lambda w: {"json": {"dataset_id": w.dataset_id, "epochs": 1}}
    ),
    ("GET", "/dashboard"): Expect(303, 403, 200),
}

#: Routes exercised by dedicated tests instead (credential handling).
SPECIAL = {("POST", "/api/auth/token"), ("POST", "/login"), ("POST", "/logout")}


@pytest.fixture
def world(app_client: TestClient, users: Users) -> World:
    admin = {"Authorization": f"Bearer {token_for(app_client, 'admin')}"}
    ds = app_client.post(
        "/api/datasets", json={"name": "matrix", "label_set": ["a", "b"]}, headers=admin
    ).json()
    case = app_client.post(
        "/api/cases",
        files={"file": ("x.png", _png(), "image/png")},
        data={"dataset_id": str(ds["id"])},
        headers=admin,
    ).json()
    app_client.post(
        f"/api/cases/{case['id']}/assignments", json={"reader_ids": [users.reader.id]}, headers=admin
    )
    return World(users=users, dataset_id=ds["id"], case_id=case["id"])


def test_matrix_covers_every_route(app_client: TestClient) -> None:
    routes = app_routes(app_client.app)  # type: ignore[arg-type]
    assert len(routes) > 40, "route enumeration found too few routes"
    missing = {r for r in routes if r[0] != "WS"} - set(MATRIX) - SPECIAL
    assert not missing, f"routes without an authorization-matrix entry: {sorted(missing)}"


def _declarations(client: TestClient) -> dict[tuple[str, str], list[ScopeRequirement | PublicRoute]]:
    found: dict[tuple[str, str], list[ScopeRequirement | PublicRoute]] = {}
    for context in iter_route_contexts(client.app.routes):  # type: ignore[attr-defined]
        route = context.route
        if isinstance(route, APIRoute):
            for method in (context.methods or set()) - {"HEAD", "OPTIONS"}:
                found[(method, context.path)] = declared_access(route)
    return found


def _required_scope(client: TestClient, route: tuple[str, str]) -> str | None:
    """The scope the route declares (None for a public route)."""
    (declared,) = _declarations(client)[route]
    return declared.scope.value if isinstance(declared, ScopeRequirement) else None


@pytest.mark.parametrize("route", sorted(MATRIX), ids=lambda r: f"{r[0]} {r[1]}")
def test_authorization_matrix(route: tuple[str, str], app_client: TestClient, world: World) -> None:
    method, template = route
    expect = MATRIX[route]
    scope = _required_scope(app_client, route) or "read"
    tokens = {
        "reader": token_for(app_client, "alice", scope="read write predict"),
        "admin": token_for(app_client, "admin", scope=scope),
    }

    def headers_for(role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens[role]}"} if role in tokens else {}

    if expect.setup is not None:
        full = {
            "reader": tokens["reader"],
            "admin": token_for(app_client, "admin", scope=" ".join(KNOWN_SCOPES)),
        }
        expect.setup(app_client, world, lambda role: {"Authorization": f"Bearer {full[role]}"})
    for role, wanted in (("anonymous", expect.anonymous), ("reader", expect.reader), ("admin", expect.admin)):
        kwargs = expect.request(world)
        response = app_client.request(
            method, world.fill(template), headers=headers_for(role), follow_redirects=False, **kwargs
        )
        assert response.status_code == wanted, (
            f"{role} {method} {template}: {response.status_code} {response.text[:300]}"
        )
        if response.status_code >= 400 and template.startswith("/api"):
            assert "detail" in response.json()


def test_every_route_declares_its_access(app_client: TestClient) -> None:
    """Exactly one of require_scope / page_scope / public_route on every HTTP route."""
    declarations = _declarations(app_client)
    assert len(declarations) > 40, "route enumeration found too few routes"
    wrong = {route: found for route, found in declarations.items() if len(found) != 1}
    assert not wrong, f"routes without exactly one scope declaration (server/auth/scopes.py): {wrong}"
    sockets = {
        c.path
        for c in iter_route_contexts(app_client.app.routes)  # type: ignore[attr-defined]
        if isinstance(c.route, APIWebSocketRoute)
    }
    assert sockets and sockets <= set(WEBSOCKET_SCOPES), f"WebSocket routes without a scope: {sockets}"


def test_every_route_enforces_its_scope(app_client: TestClient, users: Users) -> None:
    """An admin token holding every scope but the declared one is refused on every route."""
    tokens: dict[str, str] = {}
    refused: list[str] = []
    for (method, template), found in sorted(_declarations(app_client).items()):
        (declared,) = found
        if isinstance(declared, PublicRoute):
            continue
        scope = declared.scope.value
        if scope not in tokens:
            tokens[scope] = token_for(app_client, "admin", scope=" ".join(sorted(KNOWN_SCOPES - {scope})))
        path = re.sub(r"\{[^}]+\}", "1", template)
        response = app_client.request(
            method, path, headers={"Authorization": f"Bearer {tokens[scope]}"}, follow_redirects=False
        )
        if response.status_code != 403 or f"'{scope}' scope" not in response.text:
            refused.append(f"{method} {template} ({scope}): {response.status_code} {response.text[:120]}")
    assert not refused, "routes that did not enforce their declared scope:\n" + "\n".join(refused)


@pytest.mark.parametrize("path", sorted(WEBSOCKET_SCOPES))
def test_websockets_enforce_their_scope(path: str, app_client: TestClient, users: Users) -> None:
    scope = WEBSOCKET_SCOPES[path].value
    token = token_for(app_client, "admin", scope=" ".join(sorted(KNOWN_SCOPES - {scope})))
    with (
        pytest.raises(WebSocketDisconnect) as closed,
        app_client.websocket_connect(f"{path}?token={token}&role=viewer") as ws,
    ):
        ws.receive_text()
    assert closed.value.code not in (1000, 1001)
