"""A reader reads cases in the browser with the replay source: zoom/pan/resize during the replay,
a cut socket, a reload mid-stream; every scanpath point must be stored exactly once at its image
position."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from tests.e2e.conftest import E2EServer
from tests.e2e.reading_support import (
    FLAG_VISIBLE,
    C,
    WsRelay,
    check_against_scanpath,
    finish_case,
    make_scanpath,
    open_reading,
    serve_json,
    stored_samples,
    wait_replay_end,
)

pytestmark = pytest.mark.e2e

W, H = 640, 480


def canvas_box(page: Any) -> dict[str, float]:
    box = page.locator("[data-testid=viewer-canvas]").bounding_box()
    assert box is not None
    return box


def test_reader_zooms_pans_and_resizes_during_replay_then_finishes(
    e2e_server: E2EServer, make_case: Callable[..., int], login: Callable[..., Any]
) -> None:
    case_id = make_case(width=W, height=H)
    scanpath = make_scanpath(240, W, H, dropouts=(30, 31, 200), off_image=(100, 101))
    page = login("alice", device_scale_factor=2, viewport={"width": 1100, "height": 760})
    serve_json(page, "/e2e/scan-zoom.json", scanpath)
    session_id = open_reading(page, e2e_server.base_url, case_id, "/e2e/scan-zoom.json")

    box = canvas_box(page)
    dims = page.evaluate("() => [mcgip.viewer.canvas.width, mcgip.viewer.canvas.clientWidth]")
    assert dims[0] == round(dims[1] * 2), "canvas backing store follows devicePixelRatio"
    cx, cy = box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.4
    page.mouse.move(cx, cy)
    page.mouse.wheel(0, -400)  # zoom in around the cursor
    page.wait_for_timeout(400)
    page.mouse.down()
    page.mouse.move(cx + 120, cy + 60, steps=6)  # pan
    page.mouse.up()
    page.wait_for_timeout(400)
    page.set_viewport_size({"width": 820, "height": 640})  # the window shrinks mid-reading
    page.wait_for_timeout(400)
    page.keyboard.press("-")
    wait_replay_end(page)

    page.keyboard.press("b")  # finding box tool
    box = canvas_box(page)
    page.mouse.move(box["x"] + 100, box["y"] + 100)
    page.mouse.down()
    page.mouse.move(box["x"] + 220, box["y"] + 180, steps=4)
    page.mouse.up()
    assert page.text_content("[data-testid=box-readout]") != "none"
    finish_case(page, "benign")

    session = e2e_server.ok("GET", f"/api/sessions/{session_id}", "alice")
    assert session["status"] == "finished" and session["source"] == "replay"
    assert session["label"]["label"] == "benign" and session["label"]["confidence"] == pytest.approx(0.5)
    fb = session["label"]["finding_box"]
    assert 0 <= fb["x0"] < fb["x1"] <= W and 0 <= fb["y0"] < fb["y1"] <= H
    assert session["display_info"]["dpr"] == 2
    assert session["source_info"]["points"] == len(scanpath)

    samples = stored_samples(e2e_server, session_id, "alice")
    check_against_scanpath(samples, scanpath, W, H)
    zooms = np.unique(np.round(samples[:, C["zoom"]], 6))
    pans = np.unique(np.round(samples[:, [C["pan_x"], C["pan_y"]]], 3), axis=0)
    sizes = np.unique(samples[:, [C["screen_w"], C["screen_h"]]], axis=0)
    assert len(zooms) >= 3 and len(pans) >= 4 and len(sizes) == 2, "the viewport changed during the replay"
    assert np.all(samples[:, C["dpr"]] == 2)
    assert np.all(samples[:, C["flags"]].astype(int) & FLAG_VISIBLE)
    # The replay's timing survives: stored intervals equal the scanpath's.
    np.testing.assert_allclose(np.diff(samples[:, C["t_ms"]]), np.diff([p[0] for p in scanpath]), atol=0.01)


def test_cut_socket_mid_stream_loses_and_duplicates_nothing(
    e2e_server: E2EServer, make_case: Callable[..., int], login: Callable[..., Any]
) -> None:
    case_id = make_case(width=W, height=H)
    scanpath = make_scanpath(180, W, H, phase=0.7)
    page = login("alice")
    serve_json(page, "/e2e/scan-cut.json", scanpath)
    # First connection: frames 0-4 pass, 5-6 are lost, 7-9 are stored but their acks are lost,
    # frame 10 meets a dead connection. Later connections are clean.
    relay = WsRelay(page, drop_frame=lambda n: n in (5, 6), drop_ack=lambda n: 7 <= n <= 9, cut_at=10)
    session_id = open_reading(page, e2e_server.base_url, case_id, "/e2e/scan-cut.json")
    page.evaluate("""() => {
      window.seenStatus = [];
      const node = document.querySelector('[data-testid=stream-status]');
      new MutationObserver(() => seenStatus.push(node.textContent))
        .observe(node, {childList: true, characterData: true, subtree: true});
    }""")
    # The tab is hidden for a while: its samples are kept and flagged, not dropped.
    page.evaluate(
        "() => Object.defineProperty(document, 'visibilityState', {get: () => 'hidden', configurable: true})"
    )
    page.wait_for_timeout(400)
    page.evaluate("() => delete document.visibilityState")
    wait_replay_end(page)
    finish_case(page, "normal")

    assert relay.connections >= 2 and relay.frames_dropped == 2 and relay.acks_dropped == 3
    seen = page.evaluate("() => seenStatus")
    assert any(text.startswith("buffering") for text in seen), seen
    samples = stored_samples(e2e_server, session_id, "alice")
    check_against_scanpath(samples, scanpath, W, H)
    session = e2e_server.ok("GET", f"/api/sessions/{session_id}", "alice")
    assert session["sample_count"] == len(scanpath)
    hidden = (samples[:, C["flags"]].astype(int) & FLAG_VISIBLE) == 0
    assert 5 <= hidden.sum() < len(scanpath) - 5, "samples taken while the tab was hidden are flagged"
    assert not hidden[0] and not hidden[-1]


def test_reload_mid_stream_resends_the_outbox_exactly_once(
    e2e_server: E2EServer, make_case: Callable[..., int], login: Callable[..., Any]
) -> None:
    case_id = make_case(width=W, height=H)
    first = make_scanpath(90, W, H, phase=0.2)
    second = make_scanpath(60, W, H, phase=1.9)
    page = login("alice")
    serve_json(page, "/e2e/scan-a.json", first)
    serve_json(page, "/e2e/scan-b.json", second)
    # Before the reload the server stores frames 0-3 with acks, stores 4-5 without acks and never
    # sees frames from 6 on: they wait in the page's IndexedDB outbox.
    relay = WsRelay(page, drop_ack=lambda n: n in (4, 5), drop_frame=lambda n: n >= 6)
    session_id = open_reading(page, e2e_server.base_url, case_id, "/e2e/scan-a.json")
    wait_replay_end(page)
    pending = page.evaluate("() => mcgip.stream.pendingFrames")
    assert pending >= 3, "frames are waiting in the outbox before the reload"

    page.goto(f"{e2e_server.base_url}/read/{case_id}?source=replay&scanpath=/e2e/scan-b.json")
    page.wait_for_selector("#reader[data-state=reading]")
    resumed = int(page.get_attribute("#reader", "data-session-id"))
    assert resumed == session_id, "the reload resumes the session"
    wait_replay_end(page)
    finish_case(page, "malignant")

    assert relay.connections >= 2 and relay.acks_dropped == 2
    samples = stored_samples(e2e_server, session_id, "alice")
    check_against_scanpath(samples, first + second, W, H)
