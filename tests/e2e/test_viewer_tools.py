"""Viewer tools at 1280x720 (and 1920x1080): window/level presets from the DICOM and common ones,
invert, ruler in mm (px when the image has no spacing), reset, the de-identified tag panel, layouts
without clipping, the submitted label visible and amendable; replay in the reader's recorded viewport."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pydicom.data import get_testdata_file

from tests.e2e.conftest import PASSWORD, E2EServer
from tests.e2e.reading_support import C, stored_samples
from tests.e2e.ui_checks import assert_accessible, clipped, screenshot, signed_in_page

pytestmark = pytest.mark.e2e

MR_SPACING_MM = 0.3125  # MR_small.dcm PixelSpacing


@pytest.fixture(scope="module")
def alice(e2e_server: E2EServer, browser: Any) -> Iterator[Any]:
    page = signed_in_page(browser, e2e_server.base_url, "alice", PASSWORD)
    yield page
    page.context.close()


def _open(page: Any, base_url: str, case_id: int) -> None:
    page.goto(f"{base_url}/read/{case_id}?source=mouse")
    page.wait_for_selector("#reader[data-state=reading]")


def _drag(page: Any, x0: float, y0: float, x1: float, y1: float) -> None:
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x1, y1, steps=6)
    page.mouse.up()


def test_viewer_tools_label_amend_and_replay_viewport(
    e2e_server: E2EServer, make_case: Callable[..., int], alice: Any
) -> None:
    base = e2e_server.base_url
    with open(get_testdata_file("MR_small.dcm"), "rb") as f:
        mr = make_case(data=f.read(), name="mr.dcm", title="MR tools")
    _open(alice, base, mr)
    case = e2e_server.ok("GET", f"/api/cases/{mr}")
    assert case["image"]["meta"]["dicom_windows"] == [{"center": 600.0, "width": 1600.0}]

    # Presets: the file's own window, full range and auto; L cycles; invert; reset.
    options = alice.locator("#wl-preset option").all_inner_texts()
    assert any(o.startswith("DICOM window (L 600 W 1600)") for o in options) or any(
        o.startswith("Default (L 600 W 1600)") for o in options
    )
    assert any(o.startswith("Full range") for o in options) and any(o.startswith("Auto") for o in options)
    alice.select_option("#wl-preset", "full")
    wl = alice.evaluate("() => mcgip.viewer.wl")
    full = next(p for p in alice.evaluate("() => mcgip.presets") if p["id"] == "full")
    assert wl == {"center": full["center"], "width": full["width"]}
    alice.evaluate("() => document.activeElement.blur()")
    alice.keyboard.press("l")
    assert alice.evaluate("() => mcgip.viewer.wl") != wl
    alice.click("#invert-btn")
    assert alice.evaluate("() => mcgip.viewer.invert") is True
    assert "inverted" in alice.inner_text("[data-testid=view-readout]")

    # Ruler: a horizontal drag of 200 CSS px is 200 / zoom image px = that many * 0.3125 mm.
    alice.click("[data-testid=ruler-tool]")
    box = alice.locator("[data-testid=viewer-canvas]").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    _drag(alice, cx - 100, cy, cx + 100, cy)
    zoom = alice.evaluate("() => mcgip.viewer.view.zoom")
    readout = alice.inner_text("[data-testid=ruler-readout]")
    assert readout.endswith(" mm"), readout
    assert float(readout.split()[1]) == pytest.approx(200 / zoom * MR_SPACING_MM, abs=0.2)
    screenshot(alice, "viewer-tools-1280x720")

    # Tag panel: stored de-identified attributes, never the file's patient name.
    alice.click("[data-testid=tags-panel] summary")
    tags = alice.inner_text("#tag-list")
    assert "pixel spacing mm" in tags and "MR" in tags and "0.3125" in tags
    assert "CompressedSamples" not in alice.content()
    assert clipped(alice, ".side") == [] and clipped(alice, ".reader") == []
    assert_accessible(alice, "viewer")
    alice.click("#reset-btn")
    assert alice.evaluate("() => [mcgip.viewer.ruler, mcgip.viewer.invert]") == [None, False]
    assert alice.evaluate("() => mcgip.viewer.wl") == {
        "center": case["image"]["window_center"],
        "width": case["image"]["window_width"],
    }

    # Zoom in and pan (recorded with the gaze), then finish: the label stays visible and can be amended.
    alice.keyboard.press("+")
    alice.keyboard.press("+")
    alice.keyboard.press("ArrowLeft")
    view = alice.evaluate("() => mcgip.viewer.view")
    for k in range(12):
        alice.mouse.move(cx - 30 + 5 * k, cy - 10 + 2 * k)
        alice.wait_for_timeout(40)
    alice.wait_for_timeout(600)
    # Gaze status panel: live rate and valid share of the mouse source, nothing shown as NaN.
    panel = alice.inner_text("[data-testid=gaze-panel]")
    assert "NaN" not in panel and "Hz" in panel and "%" in panel, panel
    assert not alice.is_visible("[data-testid=gaze-panel] dd[data-row=face]")  # webcam only
    assert "not calibrated" in panel
    alice.check("[data-testid=label-benign]")
    alice.click("[data-testid=finish]")
    alice.wait_for_selector("#reader[data-state=finished]")
    assert alice.inner_text("[data-testid=submitted-label]").startswith("benign")
    alice.click("[data-testid=amend]")
    alice.select_option("[data-testid=amend-label]", "malignant")
    alice.click("[data-testid=amend-save]")
    alice.wait_for_selector("#submitted[data-label=malignant]")
    assert "benign" in alice.inner_text("[data-testid=submitted-history]")
    session_id = int(alice.get_attribute("#reader", "data-session-id"))
    stored = e2e_server.ok("GET", f"/api/sessions/{session_id}", "alice")
    assert stored["label"]["label"] == "malignant"
    assert [h["label"] for h in stored["label"]["history"]] == ["benign"]
    alice.set_viewport_size({"width": 1920, "height": 1080})
    assert clipped(alice, ".side") == []
    screenshot(alice, "viewer-submitted-1920x1080")
    alice.set_viewport_size({"width": 1280, "height": 720})

    # Replay: each moment is shown in the viewport the reader had (same canvas size: same view).
    samples = stored_samples(e2e_server, session_id)
    last = samples[-1]
    assert last[C["zoom"]] == pytest.approx(view["zoom"]) and last[C["pan_x"]] == pytest.approx(view["panX"])
    alice.goto(f"{base}/review/sessions/{session_id}")
    alice.wait_for_selector("#review[data-state=ready]")
    alice.evaluate("() => mcgip.playback.seek(mcgip.playback.duration)")
    alice.wait_for_timeout(100)
    shown = alice.evaluate("() => mcgip.viewer.view")
    assert shown["zoom"] == pytest.approx(view["zoom"], rel=1e-3)
    assert shown["panX"] == pytest.approx(view["panX"], abs=0.5) and shown["panY"] == pytest.approx(
        view["panY"], abs=0.5
    )
    assert "alice" in alice.inner_text("[data-testid=session-meta]")  # a name, not an id
    assert clipped(alice, ".side") == []
    screenshot(alice, "review-replay-viewport")
    assert_accessible(alice, "review")
    alice.uncheck("[data-testid=follow-view]")
    assert alice.evaluate("() => mcgip.viewer.view.zoom") != pytest.approx(view["zoom"], rel=1e-3)


def test_ruler_without_pixel_spacing_says_px(
    e2e_server: E2EServer, make_case: Callable[..., int], alice: Any
) -> None:
    png = make_case(title="PNG ruler", width=320, height=240)
    _open(alice, e2e_server.base_url, png)
    alice.click("[data-testid=ruler-tool]")
    box = alice.locator("[data-testid=viewer-canvas]").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    _drag(alice, cx, cy - 50, cx, cy + 50)
    zoom = alice.evaluate("() => mcgip.viewer.view.zoom")
    readout = alice.inner_text("[data-testid=ruler-readout]")
    assert readout.endswith("px (no pixel spacing)"), readout
    assert float(readout.split()[1]) == pytest.approx(100 / zoom, abs=0.2)
