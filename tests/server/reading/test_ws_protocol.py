"""Raw WebSocket protocol tests for /ws/gaze: happy path, resume, duplicates, every bad frame."""

from __future__ import annotations

import json
import math
import re
import threading
import time
from typing import Any

import pytest
from starlette.testclient import WebSocketTestSession
from starlette.websockets import WebSocketDisconnect

from server.app import SESSION_COOKIE
from server.reading.limits import SocketLimits
from tests.conftest import PASSWORD
from tests.server.reading.conftest import Reading, frame, issue_token, make_samples
from tests.server.reading.test_frames import BAD_MESSAGES, good, mutate, set_value


def connect(reading: Reading, username: str = "alice", **kw: Any) -> Any:
    return reading.client.websocket_connect(f"/ws/gaze?token={reading.token(username)}", **kw)


def hello(ws: WebSocketTestSession, session_id: int) -> dict[str, Any]:
    ws.send_json({"type": "hello", "session_id": session_id})
    welcome = ws.receive_json()
    assert welcome["type"] == "welcome", welcome
    return dict(welcome)


def send_frame(ws: WebSocketTestSession, seq: int, samples: list[list[float]]) -> dict[str, Any]:
    ws.send_json(frame(seq, samples))
    return dict(ws.receive_json())


def stored(reading: Reading, session_id: int, username: str = "alice") -> list[list[float]]:
    r = reading.client.get(f"/api/sessions/{session_id}/samples", headers=reading.auth(username))
    assert r.status_code == 200, r.text
    return list(r.json()["samples"])


def test_frames_are_acked_and_stored_exactly(reading: Reading) -> None:
    sid = reading.open_session()["id"]
    sent = [make_samples(12, t0=100 * k, seed=k) for k in range(3)]
    with connect(reading) as ws:
        welcome = hello(ws, sid)
        assert welcome == {
            "type": "welcome",
            "session_id": sid,
            "acked_through": -1,
            "acked_above": [],
            "status": "open",
            "acks": "each",
        }
        for seq, samples in enumerate(sent):
            assert send_frame(ws, seq, samples) == {"type": "ack", "seq": seq}
    assert stored(reading, sid) == [row for samples in sent for row in samples]
    info = reading.client.get(f"/api/sessions/{sid}", headers=reading.auth("alice")).json()
    assert (info["sample_count"], info["chunk_count"]) == (36, 3)


def test_duplicates_and_out_of_order_frames_are_harmless(reading: Reading) -> None:
    sid = reading.open_session()["id"]
    sent = {seq: make_samples(5, t0=50 * seq, seed=seq) for seq in range(4)}
    with connect(reading) as ws:
        hello(ws, sid)
        for seq in (2, 0, 2, 3, 0, 1, 3):
            assert send_frame(ws, seq, sent[seq]) == {"type": "ack", "seq": seq}
        # A resend with different content is acknowledged but never replaces what was stored.
        assert send_frame(ws, 1, make_samples(5, t0=999, seed=99)) == {"type": "ack", "seq": 1}
    assert stored(reading, sid) == [row for seq in range(4) for row in sent[seq]]
    info = reading.client.get(f"/api/sessions/{sid}", headers=reading.auth("alice")).json()
    assert (info["sample_count"], info["chunk_count"]) == (20, 4)


def test_resume_reports_the_stored_prefix_and_gaps(reading: Reading) -> None:
    sid = reading.open_session()["id"]
    with connect(reading) as ws:
        hello(ws, sid)
        for seq in (0, 1, 2, 5, 7):
            assert send_frame(ws, seq, make_samples(3, t0=seq * 30))["type"] == "ack"
    # The socket drops (client gone); a new one learns what is stored and fills the gaps.
    with connect(reading) as ws:
        welcome = hello(ws, sid)
        assert (welcome["acked_through"], welcome["acked_above"]) == (2, [5, 7])
        for seq in (3, 4, 6):
            assert send_frame(ws, seq, make_samples(3, t0=seq * 30))["type"] == "ack"
    with connect(reading) as ws:
        welcome = hello(ws, sid)
        assert (welcome["acked_through"], welcome["acked_above"]) == (7, [])
    assert len(stored(reading, sid)) == 24


def test_pipelined_frames_are_all_acked(reading: Reading) -> None:
    sid = reading.open_session()["id"]
    n = 300
    with connect(reading) as ws:
        hello(ws, sid)
        for seq in range(n):
            ws.send_json(frame(seq, make_samples(2, t0=seq * 20.0, seed=seq)))
        acks = {ws.receive_json()["seq"] for _ in range(n)}
    assert acks == set(range(n))
    assert len(stored(reading, sid)) == 2 * n


def test_batched_acks_list_only_committed_frames(reading: Reading) -> None:
    """With ``acks: "batch"`` one message acknowledges several frames; each listed one is committed."""
    sid = reading.open_session()["id"]
    n = 200
    with connect(reading) as ws:
        ws.send_json({"type": "hello", "session_id": sid, "acks": "batch"})
        assert ws.receive_json()["acks"] == "batch"
        for seq in range(n):
            ws.send_json(frame(seq, make_samples(2, t0=seq * 20.0, seed=seq)))
        acked: list[int] = []
        while len(acked) < n:
            message = ws.receive_json()
            assert message["type"] == "acks" and set(message) == {"type", "seqs"}, message
            acked += message["seqs"]
            # Visible to another connection as soon as the acknowledgement arrives.
            assert len(stored(reading, sid)) >= 2 * len(set(acked))
    assert sorted(acked) == list(range(n))
    assert len(stored(reading, sid)) == 2 * n


def test_batched_acks_send_one_message_per_commit(reading: Reading, monkeypatch: pytest.MonkeyPatch) -> None:
    sid = reading.open_session()["id"]
    n = 50
    with connect(reading) as ws:
        ws.send_json({"type": "hello", "session_id": sid, "acks": "batch"})
        ws.receive_json()
        writer = reading.client.app.state.gaze_writer  # type: ignore[attr-defined]
        gate = threading.Event()
        commit = writer._commit

        held: list[int] = []

        def gated_commit(frames: list[Any]) -> Any:
            held.append(len(frames))
            assert gate.wait(10)
            return commit(frames)

        monkeypatch.setattr(writer, "_commit", gated_commit)
        # Frame 0's commit holds the writer while the others queue up behind it.
        ws.send_json(frame(0, make_samples(2, seed=0)))
        deadline = time.monotonic() + 10
        while not held and time.monotonic() < deadline:
            time.sleep(0.005)
        for seq in range(1, n):
            ws.send_json(frame(seq, make_samples(2, t0=seq * 20.0, seed=seq)))
        while writer._queue.qsize() < n - 1 and time.monotonic() < deadline:
            time.sleep(0.005)
        gate.set()
        assert ws.receive_json() == {"type": "acks", "seqs": [0]}
        assert ws.receive_json() == {"type": "acks", "seqs": list(range(1, n))}
        assert held == [1, n - 1]


def test_batched_acks_leave_frame_errors_one_per_frame(reading: Reading) -> None:
    sid = reading.open_session()["id"]
    with connect(reading) as ws:
        ws.send_json({"type": "hello", "session_id": sid, "acks": "batch"})
        ws.receive_json()
        ws.send_json(frame(0, make_samples(3)))
        assert ws.receive_json() == {"type": "acks", "seqs": [0]}
        ws.send_json({"type": "frame", "seq": 1, "samples": [[1.0] * 17]})
        error = ws.receive_json()
        assert (error["type"], error["code"], error["seq"]) == ("error", "bad_sample", 1)


def test_unknown_ack_mode_is_refused(reading: Reading) -> None:
    sid = reading.open_session()["id"]
    with connect(reading) as ws:
        ws.send_json({"type": "hello", "session_id": sid, "acks": "some"})
        error = ws.receive_json()
        assert (error["type"], error["code"]) == ("error", "bad_frame")
        assert "acks" in error["detail"]
        # The socket stays open and unbound: a valid hello still works.
        assert hello(ws, sid)["acks"] == "each"


def test_bad_frames_get_an_error_and_change_nothing(reading: Reading) -> None:
    """Every kind of bad message, on one socket: each gets its error, the socket stays usable and
    the stored data is exactly the acknowledged frames (the parser itself: test_frames.py)."""
    # More bad messages than the default error budget sends at once (its limit: test_ws_limits.py).
    reading.client.app.state.gaze_limits = SocketLimits(error_burst=len(BAD_MESSAGES) + 1)  # type: ignore[attr-defined]
    sid = reading.open_session()["id"]
    good_samples = make_samples(4, seed=1)
    with connect(reading) as ws:
        hello(ws, sid)
        for seq, (name, message, code, bad_seq) in enumerate(BAD_MESSAGES):
            assert send_frame(ws, seq, good_samples) == {"type": "ack", "seq": seq}, name
            if isinstance(message, bytes):
                ws.send_bytes(message)
            else:
                ws.send_text(message)
            error = ws.receive_json()
            assert (error["type"], error["code"], error["seq"]) == ("error", code, bad_seq), (name, error)
            assert error["detail"], name
        assert send_frame(ws, len(BAD_MESSAGES), good_samples)["type"] == "ack"
    n_frames = len(BAD_MESSAGES) + 1
    assert stored(reading, sid) == good_samples * n_frames
    info = reading.client.get(f"/api/sessions/{sid}", headers=reading.auth("alice")).json()
    assert (info["chunk_count"], info["sample_count"]) == (n_frames, 4 * n_frames)


def test_error_details_name_the_problem(reading: Reading) -> None:
    sid = reading.open_session()["id"]
    with connect(reading) as ws:
        hello(ws, sid)
        ws.send_text(json.dumps(mutate(2, lambda m: m["samples"][3].pop())))
        assert "sample 3 has 17 values" in ws.receive_json()["detail"]
        ws.send_text(json.dumps(mutate(2, set_value(1, 4, "x"))))
        assert "sample 1 column 4 (image_y)" in ws.receive_json()["detail"]
        ws.send_text(json.dumps(mutate(2, set_value(2, 0, 0.0))))
        assert "decreases at sample 2" in ws.receive_json()["detail"]


def test_frame_before_hello_is_refused(reading: Reading) -> None:
    sid = reading.open_session()["id"]
    with connect(reading) as ws:
        ws.send_json(good(0))
        assert ws.receive_json()["code"] == "no_hello"
        hello(ws, sid)
        assert send_frame(ws, 0, make_samples(2))["type"] == "ack"
    assert len(stored(reading, sid)) == 2


def test_a_second_hello_on_one_socket_is_refused(reading: Reading) -> None:
    sid = reading.open_session()["id"]
    other = reading.open_session()["id"]
    with connect(reading) as ws:
        hello(ws, sid)
        ws.send_json({"type": "hello", "session_id": other})
        assert ws.receive_json()["code"] == "bad_frame"
        assert send_frame(ws, 0, make_samples(2))["type"] == "ack"
    assert len(stored(reading, sid)) == 2 and stored(reading, other) == []


def closed_with(ws: WebSocketTestSession) -> int:
    with pytest.raises(WebSocketDisconnect) as info:
        while True:
            ws.receive_text()
    return int(info.value.code)


def test_reader_cannot_write_to_someone_elses_session(reading: Reading) -> None:
    bobs = reading.open_session("bob", case_id=reading.bob_case_id)["id"]
    with connect(reading, "alice") as ws:
        ws.send_json({"type": "hello", "session_id": bobs})
        error = ws.receive_json()
        assert error["code"] == "forbidden"
        assert closed_with(ws) == 4403
    # Admins cannot write into a reader's session either: the gaze must be the reader's own.
    with connect(reading, "admin") as ws:
        ws.send_json({"type": "hello", "session_id": bobs})
        assert ws.receive_json()["code"] == "forbidden"
        assert closed_with(ws) == 4403
    assert stored(reading, bobs, "bob") == []


def test_unknown_session_closes_the_socket(reading: Reading) -> None:
    with connect(reading) as ws:
        ws.send_json({"type": "hello", "session_id": 987654})
        assert ws.receive_json()["code"] == "unknown_session"
        assert closed_with(ws) == 4404


def test_frames_after_finish_are_refused(reading: Reading) -> None:
    sid = reading.open_session()["id"]
    with connect(reading) as ws:
        hello(ws, sid)
        assert send_frame(ws, 0, make_samples(3))["type"] == "ack"
        finish = reading.client.post(
            f"/api/sessions/{sid}/finish", json={"label": "mass"}, headers=reading.auth("alice")
        )
        assert finish.status_code == 200, finish.text
        reply = send_frame(ws, 1, make_samples(3))
        assert (reply["type"], reply["code"], reply["seq"]) == ("error", "session_closed", 1)
    with connect(reading) as ws:
        welcome = hello(ws, sid)
        assert (welcome["status"], welcome["acked_through"]) == ("finished", 0)
        assert send_frame(ws, 0, make_samples(3))["code"] == "session_closed"
    assert len(stored(reading, sid)) == 3


@pytest.mark.parametrize("url_suffix", ["", "?token=not-a-token"])
def test_unauthenticated_socket_is_closed_4401(reading: Reading, url_suffix: str) -> None:
    reading.open_session()
    with reading.client.websocket_connect(f"/ws/gaze{url_suffix}") as ws:
        assert closed_with(ws) == 4401


def test_read_only_token_cannot_stream(reading: Reading) -> None:
    token = issue_token(reading.client, reading.users.reader, frozenset({"read"}))
    with reading.client.websocket_connect(f"/ws/gaze?token={token}") as ws:
        assert closed_with(ws) == 4401


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://localhost.evil.example"])
def test_foreign_origin_is_closed_4403_even_with_a_valid_token(reading: Reading, origin: str) -> None:
    with connect(reading, headers={"origin": origin}) as ws:
        assert closed_with(ws) == 4403


def test_cookie_login_with_own_origin_streams(reading: Reading) -> None:
    sid = reading.open_session()["id"]
    client = reading.client
    client.cookies.clear()
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert csrf is not None
    form = {"username": "alice", "password": PASSWORD, "csrf_token": csrf.group(1)}
    login = client.post("/login", data=form, follow_redirects=False)
    assert login.status_code in (302, 303), login.text
    try:
        # The test client's sockets go to host "testserver", so the cookie is passed by hand.
        cookie = f"{SESSION_COOKIE}={client.cookies[SESSION_COOKIE]}"
        with client.websocket_connect(
            "/ws/gaze", headers={"origin": "http://testserver", "cookie": cookie}
        ) as ws:
            hello(ws, sid)
            assert send_frame(ws, 0, make_samples(2))["type"] == "ack"
        # The same cookie from a foreign page is refused.
        with client.websocket_connect(
            "/ws/gaze", headers={"origin": "http://evil.example", "cookie": cookie}
        ) as ws:
            assert closed_with(ws) == 4403
    finally:
        client.cookies.clear()
    assert len(stored(reading, sid)) == 2


def test_allowed_origins_setting_admits_a_listed_origin(reading: Reading) -> None:
    sid = reading.open_session()["id"]
    reading.client.app.state.ctx.settings.allowed_origins = ["https://viewer.example"]  # type: ignore[attr-defined]
    with connect(reading, headers={"origin": "https://viewer.example"}) as ws:
        hello(ws, sid)
        assert send_frame(ws, 0, make_samples(1))["type"] == "ack"


def test_non_finite_numbers_never_reach_storage(reading: Reading) -> None:
    sid = reading.open_session()["id"]
    with connect(reading) as ws:
        hello(ws, sid)
        ws.send_text(json.dumps(frame(0, [[math.inf] * 18]), allow_nan=True))
        assert ws.receive_json()["code"] == "not_finite"
    assert stored(reading, sid) == []
