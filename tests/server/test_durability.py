"""A 2xx means committed: against a real server process, every acknowledged write is visible from a
new database connection at once, survives kill -9, and no id is ever handed out twice."""

from __future__ import annotations

import io
import json
import sqlite3
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from PIL import Image

from server.models import Role
from tests.support.live import LiveServer

ROUNDS = 8
DISPLAY = {"screen_w": 1280, "screen_h": 720, "dpr": 1}


def _png(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 65535, (48, 64), dtype=np.uint16)).save(buf, format="PNG")
    return buf.getvalue()


def _rows(live: LiveServer, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Query through a brand-new connection (never one the server could have shared)."""
    conn = sqlite3.connect(f"file:{live.db_path}?mode=ro", uri=True, timeout=30)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def _ok(response: Any, status: int) -> Any:
    assert response.status_code == status, f"{response.status_code} {response.text[:300]}"
    return response.json() if response.content else None


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer(
        tmp_path_factory.mktemp("durable"), users=(("admin", Role.admin), ("alice", Role.reader))
    )
    server.start()
    yield server
    server.close()


def _dataset(live: LiveServer, name: str) -> int:
    return int(
        _ok(live.api("POST", "/api/datasets", json={"name": name, "label_set": ["a", "b"]}), 201)["id"]
    )


def _case(live: LiveServer, dataset_id: int, seed: int) -> int:
    files = {"file": ("x.png", _png(seed), "image/png")}
    made = _ok(live.api("POST", "/api/cases", files=files, data={"dataset_id": str(dataset_id)}), 201)
    return int(made["id"])


def _alice(live: LiveServer) -> int:
    return int(_rows(live, "SELECT id FROM users WHERE username = 'alice'")[0][0])


def test_every_write_route_class_commits_before_answering(live: LiveServer) -> None:
    alice = _alice(live)
    for i in range(ROUNDS):
        # JSON create
        dataset_id = _dataset(live, f"commit-{i}")
        assert _rows(live, "SELECT name FROM datasets WHERE id = ?", dataset_id) == [(f"commit-{i}",)]
        # PATCH
        _ok(live.api("PATCH", f"/api/datasets/{dataset_id}", json={"description": f"v{i}"}), 200)
        assert _rows(live, "SELECT description FROM datasets WHERE id = ?", dataset_id) == [(f"v{i}",)]
        # multipart upload: files written and the row committed before the 201
        case_id = _case(live, dataset_id, i)
        stored = _rows(live, "SELECT storage_dir FROM stored_images WHERE case_id = ?", case_id)
        assert len(stored) == 1
        folder = live.data_dir / "blobs" / stored[0][0]
        assert folder.is_dir() and any(p.stat().st_size > 0 for p in folder.iterdir())
        # POST action on a sub-resource
        _ok(live.api("POST", f"/api/cases/{case_id}/assignments", json={"reader_ids": [alice]}), 201)
        assert _rows(live, "SELECT count(*) FROM assignments WHERE case_id = ?", case_id) == [(1,)]
        # a reader's create and state change
        body = {"case_id": case_id, "source": "mouse", "display_info": DISPLAY}
        session_id = _ok(live.api("POST", "/api/sessions", user="alice", json=body), 201)["id"]
        assert _rows(live, "SELECT status FROM reading_sessions WHERE id = ?", session_id) == [("open",)]
        _ok(live.api("POST", f"/api/sessions/{session_id}/finish", user="alice", json={"label": "a"}), 200)
        assert _rows(live, "SELECT status FROM reading_sessions WHERE id = ?", session_id) == [("finished",)]
        # PUT
        _ok(live.api("PUT", f"/api/worklist/{case_id}/skip", user="alice"), 200)
        skipped = _rows(live, "SELECT skipped_at FROM assignments WHERE case_id = ?", case_id)
        assert skipped[0][0] is not None
        # DELETE
        _ok(live.api("DELETE", f"/api/cases/{case_id}"), 204)
        assert _rows(live, "SELECT count(*) FROM cases WHERE id = ?", case_id) == [(0,)]


@pytest.mark.slow
def test_acknowledged_creations_survive_kill_9_and_ids_are_never_reused(live: LiveServer) -> None:
    dataset_id = _dataset(live, "kill-9")
    case_id = _case(live, dataset_id, 1000)
    alice = _alice(live)
    _ok(live.api("POST", f"/api/cases/{case_id}/assignments", json={"reader_ids": [alice]}), 201)
    acknowledged: dict[int, int] = {}
    for i in range(20):
        body = {"case_id": case_id, "source": "mouse", "display_info": DISPLAY, "source_info": {"tag": i}}
        made = _ok(live.api("POST", "/api/sessions", user="alice", json=body), 201)
        assert made["id"] not in acknowledged, f"id {made['id']} handed out twice"
        acknowledged[made["id"]] = i
        live.kill()  # right after the 201: nothing gets a chance to finish
        live.start()
    stored = {
        row[0]: json.loads(row[1]).get("tag")
        for row in _rows(live, "SELECT id, source_info FROM reading_sessions WHERE case_id = ?", case_id)
    }
    lost = {sid: tag for sid, tag in acknowledged.items() if stored.get(sid) != tag}
    assert not lost, f"acknowledged sessions lost or overwritten after kill -9: {lost}"
    assert list(acknowledged) == sorted(acknowledged)

    # The newest row deleted, then the server killed: its id still never comes back.
    doomed = _case(live, dataset_id, 2000)
    _ok(live.api("DELETE", f"/api/cases/{doomed}"), 204)
    live.kill()
    live.start()
    assert _case(live, dataset_id, 2001) > doomed
