"""Admin uploads a DICOM and views it with window/level; review pages replay a finished session
and show heatmaps to its reader and admins, not to other readers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from pydicom.data import get_testdata_file

from tests.e2e.conftest import E2EServer
from tests.e2e.reading_support import (
    finish_case,
    make_fixation_scanpath,
    open_reading,
    serve_json,
    wait_replay_end,
)

pytestmark = pytest.mark.e2e

CENTRE_PIXEL = """() => {
  const c = document.querySelector('[data-testid=viewer-canvas]');
  const d = c.getContext('2d').getImageData(Math.floor(c.width / 2), Math.floor(c.height / 2), 1, 1).data;
  return [d[0], d[1], d[2]];
}"""


def test_admin_uploads_a_dicom_and_adjusts_window_level(
    e2e_server: E2EServer, login: Callable[..., Any]
) -> None:
    page = login("admin")
    page.goto(f"{e2e_server.base_url}/cases")
    page.wait_for_selector(f"#dataset-select option[value='{e2e_server.dataset_id}']", state="attached")
    page.select_option("#dataset-select", str(e2e_server.dataset_id))
    page.fill("#upload-form input[name=title]", "CT small")
    page.set_input_files("#upload-form input[name=file]", get_testdata_file("CT_small.dcm"))
    page.click("#upload-form button[type=submit]")
    link = page.wait_for_selector("[data-testid=uploaded-link]")
    case_id = int(link.text_content().split()[-1])
    row = page.wait_for_selector(f"#case-table tr[data-case-id='{case_id}']")
    assert "CT small" in row.text_content() and "dicom" in row.text_content().lower()

    link.click()
    page.wait_for_selector("#case-view[data-state=ready]")
    case = e2e_server.ok("GET", f"/api/cases/{case_id}")
    wl = page.evaluate("() => mcgip.viewer.wl")
    assert wl == {"center": case["image"]["window_center"], "width": case["image"]["window_width"]}
    page.wait_for_timeout(100)
    before = page.evaluate(CENTRE_PIXEL)
    box = page.locator("[data-testid=viewer-canvas]").bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down(button="right")
    page.mouse.move(x - 150, y + 120, steps=5)  # narrower window, higher level
    page.mouse.up(button="right")
    page.wait_for_timeout(100)
    after_wl = page.evaluate("() => mcgip.viewer.wl")
    assert after_wl["width"] < wl["width"] and after_wl["center"] > wl["center"]
    assert page.evaluate(CENTRE_PIXEL) != before, "window/level changes the rendered pixels"
    page.click("#reset-btn")
    page.wait_for_timeout(100)
    assert page.evaluate(CENTRE_PIXEL) == before


def test_review_replays_a_session_and_shows_heatmaps_to_permitted_users(
    e2e_server: E2EServer, make_case: Callable[..., int], login: Callable[..., Any]
) -> None:
    case_id = make_case(width=400, height=300)
    scanpath = make_fixation_scanpath([(100, 80), (300, 200), (120, 220)])
    alice = login("alice")
    serve_json(alice, "/e2e/scan-review.json", scanpath)
    session_id = open_reading(alice, e2e_server.base_url, case_id, "/e2e/scan-review.json", rate=2)
    alice.keyboard.press("?")
    assert alice.is_visible("[data-testid=shortcut-help]")
    alice.keyboard.press("Escape")
    assert not alice.is_visible("[data-testid=shortcut-help]")
    wait_replay_end(alice)
    finish_case(alice, "normal")

    alice.goto(f"{e2e_server.base_url}/review/sessions/{session_id}")
    alice.wait_for_selector("#review[data-state=ready]")
    assert "normal" in alice.text_content("[data-testid=session-meta]")
    alice.select_option("[data-testid=speed]", "16")
    alice.click("[data-testid=play]")
    alice.wait_for_function("() => mcgip.playback.time > 0 && !mcgip.playback.playing")
    # Played at rate 2, so the session lasted half the scanpath time.
    last_t = scanpath[-1][0]
    assert last_t is not None
    assert alice.evaluate("() => mcgip.playback.time") == pytest.approx(last_t / 2, abs=1)
    alice.check("[data-testid=show-heat]")
    assert "1 session" in alice.text_content("[data-testid=heat-info]")

    alice.goto(f"{e2e_server.base_url}/review/cases/{case_id}")
    alice.wait_for_selector("#review[data-state=ready]")
    assert "1 session" in alice.text_content("[data-testid=heat-info]")
    heat = alice.evaluate("() => mcgip.heatmap.values")
    assert max(max(row) for row in heat) == pytest.approx(1.0)
    # The hottest cell lies on one of the dwelt-on targets (grid cell = image size / grid size).
    grid = np.asarray(heat)
    peak_row, peak_col = np.unravel_index(int(np.argmax(grid)), grid.shape)
    cell_w, cell_h = 400 / grid.shape[1], 300 / grid.shape[0]
    peak_x, peak_y = (peak_col + 0.5) * cell_w, (peak_row + 0.5) * cell_h
    assert any(
        abs(peak_x - tx) <= 2 * cell_w and abs(peak_y - ty) <= 2 * cell_h
        for tx, ty in [(100, 80), (300, 200), (120, 220)]
    )
    alice.wait_for_selector(f"[data-testid=session-table] tr[data-session-id='{session_id}']")

    bob = login("bob")
    bob.goto(f"{e2e_server.base_url}/review/sessions/{session_id}")
    bob.wait_for_selector("#review[data-state=error]")
    bob.goto(f"{e2e_server.base_url}/review")
    bob.wait_for_selector("#session-table")
    bob.wait_for_timeout(300)
    assert bob.locator(f"tr[data-session-id='{session_id}']").count() == 0

    admin = login("admin")
    admin.goto(f"{e2e_server.base_url}/review")
    admin.wait_for_selector(f"tr[data-session-id='{session_id}']")
    admin.goto(f"{e2e_server.base_url}/review/sessions/{session_id}")
    admin.wait_for_selector("#review[data-state=ready]")
