"""REST API of reading sessions: open, list, look up, annotate, finish, and who may do what."""

from __future__ import annotations

from typing import Any

import pytest

from tests.server.reading.conftest import Reading, make_samples
from tests.server.reading.streaming import stream


def get(reading: Reading, path: str, username: str = "alice", **params: Any) -> Any:
    return reading.client.get(path, headers=reading.auth(username), params=params)


def test_open_session_records_source_display_and_reader(reading: Reading) -> None:
    made = reading.open_session(source_info={"calibration": {"error_deg": 1.2}})
    assert made["reader_id"] == reading.users.reader.id
    assert made["case_id"] == reading.case_id
    assert (made["status"], made["source"], made["label"]) == ("open", "replay", None)
    assert made["display_info"] == {"screen_w": 1280, "screen_h": 800, "dpr": 2}
    assert made["source_info"] == {"calibration": {"error_deg": 1.2}}
    assert (made["sample_count"], made["chunk_count"], made["finished_at"]) == (0, 0, None)
    assert get(reading, f"/api/sessions/{made['id']}").json() == made


def test_reader_can_only_open_sessions_on_their_worklist(reading: Reading) -> None:
    body = {
        "case_id": reading.bob_case_id,
        "source": "mouse",
        "display_info": {"screen_w": 1, "screen_h": 1, "dpr": 1},
    }
    assert reading.client.post("/api/sessions", json=body, headers=reading.auth("alice")).status_code == 404
    body["case_id"] = 999_999
    assert reading.client.post("/api/sessions", json=body, headers=reading.auth("admin")).status_code == 404
    # Admins may read any case; the session is theirs.
    admin_session = reading.open_session("admin", case_id=reading.bob_case_id)
    assert admin_session["reader_id"] == reading.users.admin.id


@pytest.mark.parametrize(
    "change",
    [
        {"source": "telepathy"},
        {"display_info": {"screen_w": 0, "screen_h": 800, "dpr": 1}},
        {"display_info": {"screen_w": 1280, "screen_h": 800}},
        {"source_info": {"blob": "x" * 20_000}},
        {"unexpected": 1},
    ],
)
def test_open_session_validates_the_body(reading: Reading, change: dict[str, Any]) -> None:
    body = {
        "case_id": reading.case_id,
        "source": "mouse",
        "display_info": {"screen_w": 10, "screen_h": 10, "dpr": 1},
    }
    response = reading.client.post("/api/sessions", json={**body, **change}, headers=reading.auth("alice"))
    assert response.status_code == 422, response.text


def test_readers_see_only_their_own_sessions_admins_all(reading: Reading) -> None:
    a1 = reading.open_session()["id"]
    a2 = reading.open_session()["id"]
    b1 = reading.open_session("bob", case_id=reading.bob_case_id)["id"]
    assert [s["id"] for s in get(reading, "/api/sessions").json()] == [a2, a1]
    assert [s["id"] for s in get(reading, "/api/sessions", reader_id=reading.users.reader2.id).json()] == [
        a2,
        a1,
    ]
    assert get(reading, f"/api/sessions/{b1}").status_code == 404
    assert get(reading, f"/api/sessions/{b1}", "bob").status_code == 200
    assert {s["id"] for s in get(reading, "/api/sessions", "admin").json()} == {a1, a2, b1}
    only_bob = get(reading, "/api/sessions", "admin", reader_id=reading.users.reader2.id).json()
    assert [s["id"] for s in only_bob] == [b1]
    assert [s["id"] for s in get(reading, "/api/sessions", "admin", case_id=reading.bob_case_id).json()] == [
        b1
    ]
    assert get(reading, "/api/sessions/424242", "admin").status_code == 404


def test_patch_merges_source_info_while_open(reading: Reading) -> None:
    sid = reading.open_session(source_info={"tracker": "mouse", "calibration": None})["id"]
    patch = {"source_info": {"calibration": {"points": 9, "error_px": 31.5}}}
    response = reading.client.patch(f"/api/sessions/{sid}", json=patch, headers=reading.auth("alice"))
    assert response.status_code == 200, response.text
    assert response.json()["source_info"] == {
        "tracker": "mouse",
        "calibration": {"points": 9, "error_px": 31.5},
    }
    assert (
        reading.client.patch(f"/api/sessions/{sid}", json=patch, headers=reading.auth("bob")).status_code
        == 404
    )
    assert (
        reading.client.patch(f"/api/sessions/{sid}", json=patch, headers=reading.auth("admin")).status_code
        == 403
    )
    reading.client.post(
        f"/api/sessions/{sid}/finish", json={"label": "normal"}, headers=reading.auth("alice")
    )
    assert (
        reading.client.patch(f"/api/sessions/{sid}", json=patch, headers=reading.auth("alice")).status_code
        == 409
    )


def test_finish_stores_the_label_and_closes_once(reading: Reading) -> None:
    sid = reading.open_session()["id"]
    stream(reading, sid, {0: make_samples(6), 1: make_samples(6, t0=60)})
    body = {"label": "mass", "confidence": 0.8, "finding_box": {"x0": 10, "y0": 5, "x1": 30, "y1": 25.5}}
    done = reading.client.post(f"/api/sessions/{sid}/finish", json=body, headers=reading.auth("alice"))
    assert done.status_code == 200, done.text
    out = done.json()
    assert out["status"] == "finished" and out["finished_at"] is not None
    assert (out["sample_count"], out["chunk_count"]) == (12, 2)
    assert {k: out["label"][k] for k in ("label", "confidence", "finding_box")} == {
        "label": "mass",
        "confidence": 0.8,
        "finding_box": {"x0": 10.0, "y0": 5.0, "x1": 30.0, "y1": 25.5},
    }
    again = reading.client.post(
        f"/api/sessions/{sid}/finish", json={"label": "normal"}, headers=reading.auth("alice")
    )
    assert again.status_code == 409
    assert get(reading, f"/api/sessions/{sid}").json()["label"]["label"] == "mass"
    assert [s["id"] for s in get(reading, "/api/sessions", status="finished").json()] == [sid]
    assert get(reading, "/api/sessions", status="open").json() == []


@pytest.mark.parametrize(
    "body",
    [
        {"label": "fracture"},
        {"label": "mass", "confidence": 1.5},
        {"label": "mass", "finding_box": {"x0": 30, "y0": 5, "x1": 10, "y1": 25}},
        {"label": ""},
    ],
)
def test_finish_rejects_bad_diagnoses(reading: Reading, body: dict[str, Any]) -> None:
    sid = reading.open_session()["id"]
    response = reading.client.post(f"/api/sessions/{sid}/finish", json=body, headers=reading.auth("alice"))
    assert response.status_code == 422, response.text
    assert get(reading, f"/api/sessions/{sid}").json()["status"] == "open"


def test_only_the_sessions_reader_can_finish_it(reading: Reading) -> None:
    sid = reading.open_session()["id"]
    assert (
        reading.client.post(
            f"/api/sessions/{sid}/finish", json={"label": "mass"}, headers=reading.auth("bob")
        ).status_code
        == 404
    )
    admin = reading.client.post(
        f"/api/sessions/{sid}/finish", json={"label": "mass"}, headers=reading.auth("admin")
    )
    assert admin.status_code == 403
    assert get(reading, f"/api/sessions/{sid}").json()["status"] == "open"
