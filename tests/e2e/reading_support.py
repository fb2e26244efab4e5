"""Helpers for browser tests of the reading page: scanpaths served to the page, the reading flow,
stored-sample checks, and a WebSocket relay that can lose messages or cut the connection."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from tests.e2e.conftest import E2EServer

COLUMNS = [
    "t_ms",
    "screen_x",
    "screen_y",
    "image_x",
    "image_y",
    "flags",
    "zoom",
    "pan_x",
    "pan_y",
    "wl_center",
    "wl_width",
    "img_left",
    "img_top",
    "img_width",
    "img_height",
    "screen_w",
    "screen_h",
    "dpr",
]
C = {name: i for i, name in enumerate(COLUMNS)}
FLAG_VALID, FLAG_ON_IMAGE, FLAG_VISIBLE, FLAG_EYE = 1, 2, 4, 8


Scanpath = list[list[float | None]]


def make_scanpath(
    n: int,
    width: int,
    height: int,
    hz: float = 60.0,
    phase: float = 0.0,
    dropouts: tuple[int, ...] = (),
    off_image: tuple[int, ...] = (),
) -> Scanpath:
    """A scanpath [[t_ms, x, y], ...] in image px: distinct points on a Lissajous curve over the
    image, with dropouts (null x/y) and points left of the image at the given indices."""
    points: Scanpath = []
    for i in range(n):
        a = 2 * math.pi * i / n + phase
        x = width * (0.5 + 0.4 * math.sin(3 * a))
        y = height * (0.5 + 0.4 * math.sin(2 * a + 0.3))
        if i in off_image:
            x = -25.0 - i % 7
        t = round(i * 1000 / hz, 3)
        points.append([t, None, None] if i in dropouts else [t, x, y])
    return points


def make_fixation_scanpath(
    targets: list[tuple[float, float]], dwell_ms: float = 300.0, hz: float = 60.0
) -> Scanpath:
    """A scanpath that dwells on each image-px target for `dwell_ms` (±1 px jitter), so fixation
    detection finds one fixation per target."""
    points: Scanpath = []
    per = int(dwell_ms * hz / 1000)
    for k, (x, y) in enumerate(targets):
        for j in range(per):
            i = k * per + j
            points.append([round(i * 1000 / hz, 3), x + (j % 3) - 1, y + (j % 2)])
    return points


def serve_json(page: Any, path: str, doc: Any) -> None:
    """Answer the page's requests for `path` (same origin) with a JSON document."""
    body = json.dumps(doc)
    # Match the path exactly: a glob would also match page URLs that carry the path in their query.
    page.route(
        lambda url: urlsplit(url).path == path,
        lambda route: route.fulfill(status=200, content_type="application/json", body=body),
    )


def open_reading(page: Any, base_url: str, case_id: int, scanpath_path: str, rate: float = 1.0) -> int:
    """Open the reading page with the replay source; returns the session id once reading started."""
    page.goto(f"{base_url}/read/{case_id}?source=replay&scanpath={scanpath_path}&rate={rate}")
    page.wait_for_selector("#reader[data-state=reading]")
    return int(page.get_attribute("#reader", "data-session-id"))


def wait_replay_end(page: Any, timeout_ms: int = 30_000) -> None:
    page.wait_for_selector("[data-testid=source-state][data-state=ended]", timeout=timeout_ms)


def finish_case(page: Any, label: str, timeout_ms: int = 30_000) -> None:
    page.check(f"[data-testid=label-{label}]")
    page.click("[data-testid=finish]")
    page.wait_for_selector("#reader[data-state=finished]", timeout=timeout_ms)


def stored_samples(server: E2EServer, session_id: int, user: str = "admin") -> np.ndarray:
    """(n, 18) samples from GET /api/sessions/{id}/samples, in seq order."""
    body = server.ok("GET", f"/api/sessions/{session_id}/samples", user)
    assert body["columns"] == COLUMNS
    return np.asarray(body["samples"], dtype=np.float64).reshape(-1, 18)


def check_against_scanpath(samples: np.ndarray, scanpath: Scanpath, image_w: int, image_h: int) -> None:
    """Every scanpath point stored exactly once, in order, at its image position (±1 px), with
    columns consistent with the recorded viewport state."""
    assert len(samples) == len(scanpath), f"{len(samples)} samples stored for {len(scanpath)} scanpath points"
    flags = samples[:, C["flags"]].astype(int)
    for i, (point, row, f) in enumerate(zip(scanpath, samples, flags, strict=True)):
        _t, x, y = point
        if x is None or y is None:
            assert f & FLAG_VALID == 0, f"sample {i}: {row}"
            assert row[C["image_x"]] == -1 and row[C["image_y"]] == -1, f"sample {i}: {row}"
            continue
        assert f & FLAG_VALID, f"sample {i} not valid: {row}"
        assert abs(row[C["image_x"]] - x) <= 1, f"sample {i}: {row[3:5]} vs {(x, y)}"
        assert abs(row[C["image_y"]] - y) <= 1, f"sample {i}: {row[3:5]} vs {(x, y)}"
        zoom = row[C["zoom"]]
        # screen = image rect origin + image px * zoom, with the rect = canvas origin + pan.
        assert abs(row[C["img_left"]] + row[C["image_x"]] * zoom - row[C["screen_x"]]) < 1e-6
        assert abs(row[C["img_top"]] + row[C["image_y"]] * zoom - row[C["screen_y"]]) < 1e-6
        assert abs(row[C["img_width"]] - image_w * zoom) < 1e-6
        assert abs(row[C["img_height"]] - image_h * zoom) < 1e-6
        canvas_left = row[C["img_left"]] - row[C["pan_x"]]
        canvas_top = row[C["img_top"]] - row[C["pan_y"]]
        in_canvas = (
            0 <= row[C["screen_x"]] - canvas_left < row[C["screen_w"]]
            and 0 <= row[C["screen_y"]] - canvas_top < row[C["screen_h"]]
        )
        on_image = 0 <= x < image_w and 0 <= y < image_h and in_canvas
        assert bool(f & FLAG_ON_IMAGE) == on_image, f"sample {i}: on-image flag {f} for {(x, y)} {row}"
        assert f & FLAG_EYE == 0, "replay is not eye gaze"
    t = samples[:, C["t_ms"]]
    assert np.all(np.diff(t) >= 0), "session clock went backwards"


class WsRelay:
    """Relays the page's /ws/gaze traffic through Playwright, optionally losing messages.

    Rules apply to the first connection only (the one "the network" breaks); later connections
    relay everything. `n` counts the frames the page sent on that connection, from 0.
    `drop_frame(n)`: the frame never reaches the server. `drop_ack(n)`: the server stores it but
    its ack is lost. `cut_at`: at the page's n-th frame (not delivered) both ends are closed.
    """

    def __init__(
        self,
        page: Any,
        *,
        drop_frame: Callable[[int], bool] = lambda _n: False,
        drop_ack: Callable[[int], bool] = lambda _n: False,
        cut_at: int | None = None,
    ) -> None:
        self.drop_frame = drop_frame
        self.drop_ack = drop_ack
        self.cut_at = cut_at
        self.connections = 0
        self.frames_first = 0
        self.acks_dropped = 0
        self.frames_dropped = 0
        page.route_web_socket("**/ws/gaze", self.handle)

    def handle(self, ws: Any) -> None:
        self.connections += 1
        first = self.connections == 1
        server = ws.connect_to_server()
        state = {"open": True}
        index_of: dict[int, int] = {}

        def from_page(message: str | bytes) -> None:
            if not state["open"]:
                return
            msg = json.loads(message)
            if first and msg.get("type") == "frame":
                n = self.frames_first
                self.frames_first += 1
                index_of[msg["seq"]] = n
                if self.cut_at is not None and n >= self.cut_at:
                    state["open"] = False
                    ws.close(code=4000, reason="relay cut")
                    server.close()
                    return
                if self.drop_frame(n):
                    self.frames_dropped += 1
                    return
            server.send(message)

        def from_server(message: str | bytes) -> None:
            if not state["open"]:
                return
            msg = json.loads(message)
            if first and msg.get("type") == "ack" and self.drop_ack(index_of.get(msg["seq"], -1)):
                self.acks_dropped += 1
                return
            if first and msg.get("type") == "acks":
                # Batched acknowledgements: drop the chosen seqs, pass the others on.
                kept = [seq for seq in msg["seqs"] if not self.drop_ack(index_of.get(seq, -1))]
                self.acks_dropped += len(msg["seqs"]) - len(kept)
                if not kept:
                    return
                message = json.dumps({"type": "acks", "seqs": kept})
            ws.send(message)

        ws.on_message(from_page)
        server.on_message(from_server)
