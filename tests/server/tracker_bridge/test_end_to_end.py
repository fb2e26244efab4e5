"""A fake Gazepoint tracker -> ``mcgip tracker-bridge`` -> /ws/tracker -> a viewer -> /ws/gaze -> the session.

The viewer here is a small client doing what the browser's tracker source does (map screen
fractions through a viewport, put tracker times on the session clock, stream frames), so the test
runs without a browser; tests/e2e covers the browser's own tracker source.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime
from typing import Any

import httpx
import numpy as np
import pytest
from websockets.sync.client import connect

from server.reading.samples import COLUMN, FLAG_EYE, FLAG_ON_IMAGE, FLAG_VALID, FLAG_VISIBLE
from server.settings import Settings
from server.tracker_bridge.bridge import Bridge, relay_url
from server.tracker_bridge.gazepoint import GazepointTracker
from tests.conftest import Users, token_for
from tests.server.reading.conftest import png_bytes
from tests.server.tracker_bridge.fake_gazepoint import FakeGazepoint
from tests.server.tracker_bridge.live_server import live_server

SCREEN_W, SCREEN_H = 1920, 1080
#: The viewer shows the 80 x 60 test image at zoom 4 with its top-left corner at (800, 400) on screen.
ZOOM, LEFT, TOP = 4.0, 800.0, 400.0


def viewer_row(t_ms: float, x: float, y: float, valid: bool) -> list[float]:
    sx, sy = x * SCREEN_W, y * SCREEN_H
    ix, iy = (sx - LEFT) / ZOOM, (sy - TOP) / ZOOM
    flags = FLAG_VISIBLE | FLAG_EYE
    if valid:
        flags |= FLAG_VALID | (FLAG_ON_IMAGE if 0 <= ix < 80 and 0 <= iy < 60 else 0)
    else:
        sx = sy = ix = iy = -1.0
    return [
        t_ms,
        sx,
        sy,
        ix,
        iy,
        flags,
        ZOOM,
        LEFT,
        TOP,
        2048,
        4096,
        LEFT,
        TOP,
        320,
        240,
        SCREEN_W,
        SCREEN_H,
        1,
    ]


class Viewer:
    """Receives relayed gaze for a reader and streams it into their session over /ws/gaze."""

    def __init__(self, base: str, token: str, session: dict[str, Any], api: Callable[..., Any]) -> None:
        ws_base = base.replace("http://", "ws://")
        self.sockets = ExitStack()
        self.relay = self.sockets.enter_context(connect(f"{ws_base}/ws/tracker?role=viewer&token={token}"))
        self.gaze = self.sockets.enter_context(connect(f"{ws_base}/ws/gaze?token={token}"))
        self.gaze.send(json.dumps({"type": "hello", "session_id": session["id"]}))
        assert json.loads(self.gaze.recv(timeout=10))["type"] == "welcome"
        started = session["started_at"].replace("Z", "+00:00")
        self.t0_ms = datetime.fromisoformat(started).replace(tzinfo=UTC).timestamp() * 1000
        self.session_id = session["id"]
        self.api = api
        self.seq = 0
        self.statuses: list[dict[str, Any]] = []
        self.tracker_info: dict[str, Any] = {}
        self.received = 0

    def run_until(self, done: threading.Event) -> None:
        while not done.is_set():
            try:
                message = json.loads(self.relay.recv(timeout=0.2))
            except TimeoutError:
                continue
            if message["type"] == "status":
                self.statuses.append(message)
            elif message["type"] == "tracker":
                # As the browser source does: accumulate what the tracker reported and store it all.
                self.tracker_info.update(message["info"])
                body = {"source_info": {"tracker": self.tracker_info}}
                self.api("PATCH", f"/api/sessions/{self.session_id}", json=body)
            elif message["type"] == "samples":
                rows = [viewer_row(t - self.t0_ms, x, y, bool(v)) for t, x, y, v in message["samples"]]
                self.received += len(rows)
                self.gaze.send(json.dumps({"type": "frame", "seq": self.seq, "samples": rows}))
                reply = json.loads(self.gaze.recv(timeout=10))
                assert reply == {"type": "ack", "seq": self.seq}, reply
                self.seq += 1

    def close(self) -> None:
        self.sockets.close()


def test_gazepoint_to_session(settings: Settings, users: Users, app_client: Any) -> None:
    n = 90
    rng = np.random.default_rng(0)
    points = [(float(x), float(y), 1) for x, y in rng.uniform(0.3, 0.7, (n, 2))]
    points[10] = (0.0, 0.0, 0)  # eyes lost
    with live_server(settings) as base:
        token = token_for(app_client, "alice")

        def api(method: str, path: str, **kw: Any) -> Any:
            r = httpx.request(
                method, base + path, headers={"Authorization": f"Bearer {token}"}, timeout=30, **kw
            )
            assert r.status_code < 300, r.text
            return r.json()

        admin = {"Authorization": f"Bearer {token_for(app_client, 'admin')}"}
        ds = httpx.post(
            base + "/api/datasets", json={"name": "d", "label_set": ["a", "b"]}, headers=admin
        ).json()
        case = httpx.post(base + "/api/cases", files={"file": ("c.png", png_bytes(), "image/png")},
                          data={"dataset_id": str(ds["id"])}, headers=admin).json()  # fmt: skip
        httpx.post(
            base + f"/api/cases/{case['id']}/assignments",
            json={"reader_ids": [users.reader.id]},
            headers=admin,
        )
        display = {"screen_w": SCREEN_W, "screen_h": SCREEN_H, "dpr": 1}
        session = api(
            "POST",
            "/api/sessions",
            json={"case_id": case["id"], "source": "tracker", "display_info": display},
        )

        viewer = Viewer(base, token, session, api)
        done = threading.Event()
        viewer_thread = threading.Thread(target=viewer.run_until, args=(done,), daemon=True)
        viewer_thread.start()
        tracker = FakeGazepoint(points, rate_hz=60)
        bridge = Bridge(GazepointTracker(port=tracker.port), relay_url(base, token), batch_ms=20)
        stats = bridge.run(duration_s=30)
        deadline = time.monotonic() + 10
        while viewer.received < n and time.monotonic() < deadline:
            time.sleep(0.05)
        done.set()
        viewer_thread.join(timeout=10)
        viewer.close()
        stored = api("GET", f"/api/sessions/{session['id']}/samples")
        final = api("GET", f"/api/sessions/{session['id']}")

    assert ("SET", "ENABLE_SEND_POG_FIX", "1") in tracker.received
    assert ("SET", "ENABLE_SEND_TIME", "1") in tracker.received
    assert stats.sent == n and stats.dropped == 0 and stats.viewers == 1
    assert {"type": "status", "bridges": 1} in viewer.statuses
    samples = np.asarray(stored["samples"])
    assert samples.shape == (n, 18)
    valid = samples[:, COLUMN["flags"]].astype(int) & FLAG_VALID > 0
    assert valid.sum() == n - 1 and not valid[10]
    expected = np.asarray([p[:2] for p in points])
    ok = np.arange(n) != 10
    np.testing.assert_allclose(samples[ok, COLUMN["screen_x"]], expected[ok, 0] * SCREEN_W, atol=0.01)
    np.testing.assert_allclose(
        samples[ok, COLUMN["image_y"]], (expected[ok, 1] * SCREEN_H - TOP) / ZOOM, atol=0.01
    )
    # Tracker time (60 Hz) mapped onto the session clock: same spacing, starting after the session opened.
    t = samples[:, COLUMN["t_ms"]]
    assert 0 < t[0] < 60_000
    steps = np.diff(t)
    assert np.median(steps) == pytest.approx(1000 / 60, abs=0.01)
    # The clock offset is the least delay seen so far, so it only shrinks while the stream runs: a
    # slow first sample (a busy machine) can shorten the span a little, never lengthen it.
    span = (n - 1) * 1000 / 60
    assert span - 150 <= t[-1] - t[0] <= span + 1
    tracker_info = final["source_info"]["tracker"]
    assert (
        tracker_info["calibration"]["mean_error_px"] == 21.5
        and tracker_info["calibration"]["valid_points"] == 9
    )
    assert tracker_info["model"] == "Gazepoint GP3"


def test_relay_refuses_strangers_and_keeps_readers_apart(
    settings: Settings, users: Users, app_client: Any
) -> None:
    with live_server(settings) as base:
        ws_base = base.replace("http://", "ws://")
        alice, bob = token_for(app_client, "alice"), token_for(app_client, "bob")
        with connect(f"{ws_base}/ws/tracker?role=viewer&token=bad") as ws, pytest.raises(Exception) as closed:
            ws.recv(timeout=5)
        assert getattr(getattr(closed.value, "rcvd", None), "code", None) == 4401
        evil = {"Origin": "http://evil.example"}
        with connect(f"{ws_base}/ws/tracker?role=viewer&token={alice}", additional_headers=evil) as ws, \
             pytest.raises(Exception) as closed:  # fmt: skip
            ws.recv(timeout=5)
        assert getattr(getattr(closed.value, "rcvd", None), "code", None) == 4403
        with connect(f"{ws_base}/ws/tracker?role=viewer&token={alice}") as alice_view, \
             connect(f"{ws_base}/ws/tracker?role=viewer&token={bob}") as bob_view, \
             connect(f"{ws_base}/ws/tracker?role=bridge&token={alice}") as bridge:  # fmt: skip
            assert json.loads(bridge.recv(timeout=5)) == {"type": "status", "viewers": 1}
            bridge.send(json.dumps({"type": "samples", "samples": [[1.0, 0.5, 0.5, 1]]}))
            bridge.send('{"type": "samples", "samples": [[1.0, 0.5]]}')
            assert json.loads(bridge.recv(timeout=5))["code"] == "bad_sample"
            relayed = {"type": "samples", "samples": [[1.0, 0.5, 0.5, 1.0]]}
            messages = [json.loads(alice_view.recv(timeout=5))]
            while relayed not in messages:
                messages.append(json.loads(alice_view.recv(timeout=5)))
            assert {"type": "status", "bridges": 1} in messages
            bob_messages = []
            with pytest.raises(TimeoutError):
                while True:
                    bob_messages.append(json.loads(bob_view.recv(timeout=1)))
            assert all(m["type"] == "status" and m["bridges"] == 0 for m in bob_messages)
