"""Per-socket limits of /ws/gaze: sample budget, error budget, bounded replies (non-reading client)."""

from __future__ import annotations

import base64
import functools
import json
import os
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import uvicorn

from server.app import create_app
from server.db import Database
from server.models import Role, User
from server.reading import limits as limits_module
from server.reading.limits import CLOSE_NOT_READING, DEFAULT_LIMITS, SocketLimits, TokenBucket
from server.reading.ws import SocketStats
from server.settings import Settings
from tests.server.reading.conftest import Reading, frame, make_samples
from tests.server.reading.test_ws_protocol import connect, hello, stored

# The limits do not depend on the database: SQLite only.
pytestmark = pytest.mark.parametrize("backend", ["sqlite"])


def socket_stats(reading: Reading) -> SocketStats:
    stats = reading.client.app.state.gaze_socket_stats  # type: ignore[attr-defined]
    assert isinstance(stats, SocketStats)
    return stats


def test_token_bucket_refills_at_its_rate_and_caps_at_capacity(backend: str) -> None:
    now = [0.0]
    bucket = TokenBucket(rate=10.0, capacity=20.0, clock=lambda: now[0])
    assert bucket.take(15) and not bucket.take(6) and bucket.take(5)
    assert bucket.wait_s(10) == pytest.approx(1.0)
    now[0] = 0.5
    assert not bucket.take(6) and bucket.take(5)
    bucket.charge(10)  # into debt
    assert bucket.wait_s() == pytest.approx(1.0)
    now[0] = 100.0
    assert bucket.wait_s(20) == 0 and not bucket.take(21)


def test_token_bucket_answers_a_covered_wait_without_the_clock(backend: str) -> None:
    reads = []
    now = [0.0]

    def clock() -> float:
        reads.append(now[0])
        return now[0]

    bucket = TokenBucket(rate=10.0, capacity=20.0, clock=clock)
    assert bucket.take(15)
    reads.clear()
    assert bucket.wait_s(5) == 0 and bucket.wait_s() == 0 and reads == []
    # Skipped refills lose nothing: the next one credits the whole elapsed time, capped.
    now[0] = 0.3
    assert bucket.wait_s(8) == pytest.approx(0.0) and bucket.take(8) and not bucket.take(0.5)
    now[0] = 10.0
    assert bucket.take(20) and not bucket.take(0.1)


def test_limits_refuse_values_that_would_block_valid_frames(backend: str) -> None:
    with pytest.raises(ValueError, match="burst_samples"):
        SocketLimits(burst_samples=1999)
    with pytest.raises(ValueError, match="samples_per_s"):
        SocketLimits(samples_per_s=0)
    assert DEFAULT_LIMITS.samples_per_s >= 2 * 1200  # twice the fastest supported tracker
    assert DEFAULT_LIMITS.message_cost(10, 12) == 12 and DEFAULT_LIMITS.message_cost(10, 1) == 5
    assert DEFAULT_LIMITS.message_cost(4096, 3) == 8  # at least one unit per 512 bytes


class BudgetClock:
    """The clock of every budget the socket creates: stands still until the test moves it.

    With the real clock, a loaded machine taking longer than the refill time between two sends
    would turn a refusal into an acceptance.
    """

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def budget_clock(monkeypatch: pytest.MonkeyPatch) -> BudgetClock:
    clock = BudgetClock()
    monkeypatch.setattr(limits_module, "TokenBucket", functools.partial(TokenBucket, clock=clock))
    return clock


def test_over_rate_frames_get_rate_limited_and_can_be_resent(
    reading: Reading, budget_clock: BudgetClock
) -> None:
    # 1,000 samples/s, bursts of 2,000: the third frame of 1,000 samples sent at once does not fit.
    reading.client.app.state.gaze_limits = SocketLimits(samples_per_s=1000, burst_samples=2000)  # type: ignore[attr-defined]
    sid = reading.open_session()["id"]
    frames = {seq: make_samples(1000, t0=seq * 10_000.0, seed=seq) for seq in range(3)}
    with connect(reading) as ws:
        hello(ws, sid)
        budget_clock.now = 1.0  # the hello's cost has been refilled
        for seq in range(3):
            ws.send_json(frame(seq, frames[seq]))
        replies = [ws.receive_json() for _ in range(3)]
        acks = sorted(r["seq"] for r in replies if r["type"] == "ack")
        errors = [r for r in replies if r["type"] == "error"]
        assert acks == [0, 1], replies
        assert len(errors) == 1
        error = errors[0]
        assert (error["code"], error["seq"]) == ("rate_limited", 2)
        assert "1000 samples/s" in error["detail"] and "resend" in error["detail"]
        assert error["retry_after_ms"] == 1000  # 1,000 missing samples at 1,000 samples/s
        budget_clock.now = 1.5
        ws.send_json(frame(2, frames[2]))
        assert ws.receive_json()["code"] == "rate_limited"  # too early
        budget_clock.now = 2.0
        ws.send_json(frame(2, frames[2]))
        assert ws.receive_json() == {"type": "ack", "seq": 2}
    assert stored(reading, sid) == frames[0] + frames[1] + frames[2]
    assert socket_stats(reading).rate_limited == 2


def test_error_replies_are_rate_limited_and_count_what_was_suppressed(
    reading: Reading, budget_clock: BudgetClock
) -> None:
    reading.client.app.state.gaze_limits = SocketLimits(errors_per_s=2, error_burst=3)  # type: ignore[attr-defined]
    sid = reading.open_session()["id"]
    with connect(reading) as ws:
        hello(ws, sid)
        for _ in range(10):
            ws.send_text("not json")
        # A valid frame after the bad ones: its ack proves every bad message was handled.
        ws.send_json(frame(0, make_samples(2)))
        first: list[dict[str, Any]] = []
        while (reply := ws.receive_json())["type"] != "ack":
            first.append(reply)
        assert len(first) == 3, first  # the burst
        assert all(r["code"] == "bad_json" and "suppressed" not in r for r in first)
        budget_clock.now += 0.5  # one error's worth of budget comes back
        ws.send_text("not json")
        later = ws.receive_json()
    assert later["code"] == "bad_json"
    assert len(first) + later["suppressed"] == 10
    assert socket_stats(reading).errors_suppressed == later["suppressed"]
    assert len(stored(reading, sid)) == 2


# ---- a client that sends but never reads, against a real server ---------------------------------


@dataclass
class LiveServer:
    port: int
    token: str
    stats: Callable[[], SocketStats]


@pytest.fixture
def live_server(backend: str, settings: Settings) -> Iterator[LiveServer]:
    db = Database(settings.resolved_database_url)
    with db.session() as session:
        user = User(username="streamer", display_name="streamer", password_hash="!", role=Role.reader)
        session.add(user)
    app = create_app(settings)
    # Every invalid message gets its error (no error or sample budget), and at most 64 replies may wait.
    app.state.gaze_limits = SocketLimits(
        samples_per_s=1e9,
        burst_samples=1e9,
        errors_per_s=1e9,
        error_burst=1e9,
        max_outbox_messages=64,
        max_outbox_bytes=65536,
        close_grace_s=60,
    )
    token = app.state.ctx.tokens.issue(user.id, user.token_version, frozenset({"read", "write"}))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.05)
    yield LiveServer(port, str(token), lambda: app.state.gaze_socket_stats)
    server.should_exit = True
    thread.join(30)
    db.dispose()


def _client_frame(text: bytes) -> bytes:
    """A masked text frame (clients must mask)."""
    mask = os.urandom(4)
    header = bytes([0x81])
    n = len(text)
    header += bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack("!H", n)
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(text))


def _read_frames(sock: socket.socket, timeout: float) -> Iterator[tuple[int, bytes]]:
    """(opcode, payload) of the server's unmasked frames until the connection ends or ``timeout``."""
    sock.settimeout(timeout)
    buffer = b""
    while True:
        while len(buffer) >= 2:
            n, at = buffer[1] & 0x7F, 2
            if n == 126:
                n, at = (struct.unpack("!H", buffer[2:4])[0], 4) if len(buffer) >= 4 else (-1, 0)
            elif n == 127:
                n, at = (struct.unpack("!Q", buffer[2:10])[0], 10) if len(buffer) >= 10 else (-1, 0)
            if n < 0 or len(buffer) < at + n:
                break
            yield buffer[0] & 0x0F, buffer[at : at + n]
            buffer = buffer[at + n :]
        chunk = sock.recv(65536)
        if not chunk:
            return
        buffer += chunk


def test_a_client_that_does_not_read_is_closed_4408(live_server: LiveServer) -> None:
    sock = socket.socket()
    # A small receive buffer: the server's writes back up after a few kilobytes.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", live_server.port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /ws/gaze?token={live_server.token} HTTP/1.1\r\nHost: 127.0.0.1:{live_server.port}\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    response = b""
    while b"\r\n\r\n" not in response:
        response += sock.recv(1)
    assert response.startswith(b"HTTP/1.1 101"), response
    bad = _client_frame(b"not json")
    sock.settimeout(0.5)
    sent = 0
    deadline = time.monotonic() + 60
    # Invalid messages, never reading the error replies, until the server gives up on us.
    while live_server.stats().closed_not_reading == 0:
        assert time.monotonic() < deadline, f"not closed after {sent} messages"
        try:
            sock.sendall(bad * 50)
            sent += 50
        except TimeoutError:
            pass  # the server stopped reading us
    assert live_server.stats().closed_not_reading == 1
    replies, close = 0, None
    for opcode, payload in _read_frames(sock, timeout=30):
        if opcode == 0x8:
            close = struct.unpack("!H", payload[:2])[0], payload[2:].decode()
            break
        assert json.loads(payload)["code"] == "bad_json"
        replies += 1
    sock.close()
    assert close == (CLOSE_NOT_READING, "client is not reading")
    # Replies waiting beyond the bound were dropped, not queued.
    assert 0 < replies < sent
