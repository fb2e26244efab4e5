"""Fixtures for reading sessions: a dataset with one case on alice's worklist, sessions, samples."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from server.models import User
from server.reading.samples import N_COLUMNS
from tests.conftest import Users

AuthHeaders = Callable[[str], dict[str, str]]
IMAGE_W, IMAGE_H = 80, 60


def png_bytes(width: int = IMAGE_W, height: int = IMAGE_H) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(
        (np.arange(width * height, dtype=np.uint32) % 4096).astype(np.uint16).reshape(height, width)
    ).save(buf, format="PNG")
    return buf.getvalue()


@dataclass
class Reading:
    """A case on alice's worklist (and bob's on a second case) and helpers to open sessions."""

    client: TestClient
    auth: AuthHeaders
    users: Users
    dataset_id: int
    case_id: int
    bob_case_id: int

    def open_session(
        self, username: str = "alice", case_id: int | None = None, **extra: Any
    ) -> dict[str, Any]:
        body = {
            "case_id": case_id if case_id is not None else self.case_id,
            "source": "replay",
            "source_info": {"scanpath": "test"},
            "display_info": {"screen_w": 1280, "screen_h": 800, "dpr": 2},
            **extra,
        }
        response = self.client.post("/api/sessions", json=body, headers=self.auth(username))
        assert response.status_code == 201, response.text
        return dict(response.json())

    def token(self, username: str = "alice") -> str:
        return self.auth(username)["Authorization"].split(" ", 1)[1]


def issue_token(client: TestClient, user: User, scopes: frozenset[str] = frozenset({"read", "write"})) -> str:
    """A bearer token signed by the app (the login flow itself is tested in tests/server/test_auth.py)."""
    tokens = client.app.state.ctx.tokens  # type: ignore[attr-defined]
    return str(tokens.issue(user.id, user.token_version, scopes))


@pytest.fixture
def reading(app_client: TestClient, users: Users) -> Reading:
    by_name = {"admin": users.admin, "alice": users.reader, "bob": users.reader2}
    cache: dict[str, dict[str, str]] = {}

    def auth(username: str) -> dict[str, str]:
        if username not in cache:
            cache[username] = {"Authorization": f"Bearer {issue_token(app_client, by_name[username])}"}
        return cache[username]

    admin = auth("admin")
    ds = app_client.post(
        "/api/datasets", json={"name": "mammo", "label_set": ["normal", "mass"]}, headers=admin
    )
    assert ds.status_code == 201, ds.text
    case_ids = []
    for name in ("c1", "c2"):
        case = app_client.post(
            "/api/cases",
            files={"file": (f"{name}.png", png_bytes(), "image/png")},
            data={"dataset_id": str(ds.json()["id"]), "external_id": name},
            headers=admin,
        )
        assert case.status_code == 201, case.text
        case_ids.append(case.json()["id"])
    for case_id, reader in zip(case_ids, (users.reader, users.reader2), strict=True):
        r = app_client.post(
            f"/api/cases/{case_id}/assignments", json={"reader_ids": [reader.id]}, headers=admin
        )
        assert r.status_code == 201, r.text
    return Reading(app_client, auth, users, ds.json()["id"], case_ids[0], case_ids[1])


def make_samples(
    n: int, *, t0: float = 0.0, seed: int = 0, x0: float = 40.0, y0: float = 30.0
) -> list[list[float]]:
    """``n`` plausible samples (as JSON lists) starting at ``t0`` ms, 120 Hz, near (x0, y0)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        ix = float(x0 + rng.normal(0, 2))
        iy = float(y0 + rng.normal(0, 2))
        zoom, pan_x, pan_y = 2.5, 10.0, 20.0
        rows.append(
            [
                t0 + i * 1000 / 120,
                ix * zoom + pan_x,
                iy * zoom + pan_y,
                ix,
                iy,
                15,
                zoom,
                pan_x,
                pan_y,
                2048.0,
                4096.0,
                pan_x,
                pan_y,
                IMAGE_W * zoom,
                IMAGE_H * zoom,
                1280,
                800,
                2,
            ]
        )
    assert len(rows[0]) == N_COLUMNS
    return rows


def frame(seq: int, samples: list[list[float]]) -> dict[str, Any]:
    return {"type": "frame", "seq": seq, "samples": samples}
