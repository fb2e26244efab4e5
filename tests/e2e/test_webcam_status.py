"""The gaze status panel's webcam rows with Chromium's fake camera, which shows a test pattern and no
face: the start-up steps are shown as they happen and the face indicator says "no face", never NaN."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, PASSWORD, E2EServer
from tests.e2e.ui_checks import screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

#: Every text the source-state line takes, recorded from the first paint on.
RECORD_STATES = """
window.__sourceStates = [];
new MutationObserver(() => {
  const node = document.getElementById('source-state');
  if (node && node.textContent && window.__sourceStates.at(-1) !== node.textContent) {
    window.__sourceStates.push(node.textContent);
  }
}).observe(document, { subtree: true, childList: true, characterData: true });
"""


@pytest.fixture(scope="module")
def pattern_browser(playwright: Any) -> Iterator[Any]:
    args = [
        *[a for a in CHROMIUM_ARGS if a != "--disable-gpu"],
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",  # no video file: Chromium's own moving test pattern
        "--use-angle=swiftshader",
        "--enable-unsafe-swiftshader",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost",
    ]
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
    yield browser
    browser.close()


def test_webcam_start_up_progress_and_no_face(
    pattern_browser: Any, make_case: Callable[..., int], e2e_server: E2EServer
) -> None:
    case_id = make_case(("alice",), width=320, height=240)
    context = pattern_browser.new_context(viewport={"width": 1280, "height": 720})
    context.set_default_timeout(30_000)
    try:
        page = context.new_page()
        page.add_init_script(RECORD_STATES)
        page.goto(f"{e2e_server.base_url}/login")
        page.fill("input[name=username]", "alice")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_selector("[data-testid=whoami]")
        page.goto(f"{e2e_server.base_url}/read/{case_id}?source=webcam")
        # WebGazer loads from this server (software WebGL: slow), then looks for a face it cannot find.
        page.wait_for_function(
            "() => (document.getElementById('source-state')?.textContent || '')"
            ".includes('looking for your face')",
            timeout=180_000,
        )
        states = page.evaluate("window.__sourceStates")
        # Each step is shown as it starts ("opening the camera…" may last less than a frame).
        steps = [s for s in states if s != "opening the camera…"]
        assert steps[:2] == [
            "loading the face tracker (up to a minute the first time)…",
            "looking for your face…",
        ], states
        assert page.get_attribute("[data-testid=source-state]", "data-state") == "starting"
        face = page.locator("#gaze-panel dd[data-field=face]")
        assert face.is_visible()
        page.wait_for_timeout(1500)  # a few panel refreshes while the tracker runs on the pattern
        assert face.inner_text() == "no face"
        panel = page.locator("[data-testid=gaze-panel]").inner_text()
        assert "NaN" not in panel and "undefined" not in panel, panel
        assert page.locator("#gaze-panel dd[data-field=accuracy]").inner_text() == "not calibrated"
        screenshot(page, "webcam-no-face")
    finally:
        context.close()
