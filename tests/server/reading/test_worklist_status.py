"""GET /api/worklist: each case carries the reader's status (unread, in_progress, read, skipped)."""

from __future__ import annotations

from tests.server.reading.conftest import Reading, make_samples, png_bytes
from tests.server.reading.streaming import stream


def _add_case(reading: Reading, name: str) -> int:
    admin = reading.auth("admin")
    case = reading.client.post(
        "/api/cases",
        files={"file": (f"{name}.png", png_bytes(), "image/png")},
        data={"dataset_id": str(reading.dataset_id), "external_id": name},
        headers=admin,
    )
    assert case.status_code == 201, case.text
    case_id = int(case.json()["id"])
    r = reading.client.post(
        f"/api/cases/{case_id}/assignments", json={"reader_ids": [reading.users.reader.id]}, headers=admin
    )
    assert r.status_code == 201, r.text
    return case_id


def _statuses(reading: Reading, username: str = "alice", **params: object) -> dict[int, str]:
    r = reading.client.get("/api/worklist", headers=reading.auth(username), params=params)
    assert r.status_code == 200, r.text
    return {item["case"]["id"]: item["status"] for item in r.json()}


def test_worklist_status_follows_sessions_and_skips(reading: Reading) -> None:
    started, done, skipped = (_add_case(reading, name) for name in ("w1", "w2", "w3"))
    first = reading.case_id
    assert set(_statuses(reading).values()) == {"unread"}

    reading.open_session(case_id=started)
    sid = reading.open_session(case_id=done)["id"]
    stream(reading, sid, {0: make_samples(6)})
    finished = reading.client.post(
        f"/api/sessions/{sid}/finish", json={"label": "mass"}, headers=reading.auth("alice")
    )
    assert finished.status_code == 200, finished.text
    put = reading.client.put(f"/api/worklist/{skipped}/skip", headers=reading.auth("alice"))
    assert put.status_code == 200 and put.json() == {"case_id": skipped, "status": "skipped"}

    assert _statuses(reading) == {first: "unread", started: "in_progress", done: "read", skipped: "skipped"}
    items = reading.client.get("/api/worklist", headers=reading.auth("alice")).json()
    by_id = {item["case"]["id"]: item for item in items}
    assert by_id[done]["label"] == "mass" and by_id[done]["finished"] is True
    assert by_id[done]["last_read_at"] is not None and by_id[first]["label"] is None
    # Filtering by status (repeatable), and the admin's view of alice's worklist agrees.
    assert set(_statuses(reading, status=["unread", "skipped"])) == {first, skipped}
    admin_view = _statuses(reading, "admin", reader_id=reading.users.reader.id)
    assert admin_view == _statuses(reading)
    assert reading.client.get("/api/worklist?status=bogus", headers=reading.auth("alice")).status_code == 422

    # Un-skipping brings it back as unread; skipping a finished case still shows it as read.
    back = reading.client.delete(f"/api/worklist/{skipped}/skip", headers=reading.auth("alice"))
    assert back.json()["status"] == "unread"
    assert reading.client.put(f"/api/worklist/{done}/skip", headers=reading.auth("alice")).json() == {
        "case_id": done,
        "status": "read",
    }


def test_skip_only_on_the_callers_own_worklist(reading: Reading) -> None:
    # bob's case is not on alice's worklist: 404, and nothing changes for bob.
    r = reading.client.put(f"/api/worklist/{reading.bob_case_id}/skip", headers=reading.auth("alice"))
    assert r.status_code == 404 and "not on your worklist" in r.json()["detail"]
    assert _statuses(reading, "bob") == {reading.bob_case_id: "unread"}
    assert reading.client.put("/api/worklist/999999/skip", headers=reading.auth("alice")).status_code == 404
