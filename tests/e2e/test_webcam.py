"""Webcam gaze in headless Chromium: WebGazer from this server only (no other network), a fake
camera playing a face video, calibration driven by clicks, validation, reading, stored samples.

The fake camera plays a still face (scikit-image's ``astronaut``), so WebGazer finds a face but
learns nothing that varies: its predictions sit near the centre of the calibration targets, and
the validation error is large. That exercises the recalibration prompt (the reader continues
anyway); what is checked is the pipeline, not WebGazer's accuracy.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pytest
from PIL import Image
from skimage import data

from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, PASSWORD, E2EServer
from tests.e2e.reading_support import FLAG_EYE, FLAG_VALID, FLAG_VISIBLE, C, finish_case, stored_samples

logger = logging.getLogger(__name__)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def write_face_video(path: Path, frames: int = 10) -> Path:
    """A 640 x 480 YUV 4:2:0 y4m of the astronaut's face (Chromium's fake camera loops it)."""
    face = Image.fromarray(data.astronaut()).resize((480, 480))
    canvas = Image.new("RGB", (640, 480), (30, 30, 30))
    canvas.paste(face, (80, 0))
    ycc = np.asarray(canvas.convert("YCbCr"))
    planes = ycc[..., 0].tobytes() + ycc[::2, ::2, 1].tobytes() + ycc[::2, ::2, 2].tobytes()
    with path.open("wb") as handle:
        handle.write(b"YUV4MPEG2 W640 H480 F15:1 Ip A1:1 C420jpeg\n")
        for _ in range(frames):
            handle.write(b"FRAME\n" + planes)
    return path


@pytest.fixture(scope="module")
def camera_browser(playwright: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    video = write_face_video(tmp_path_factory.mktemp("camera") / "face.y4m")
    args = [
        *[a for a in CHROMIUM_ARGS if a != "--disable-gpu"],
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={video}",
        # WebGazer's face mesh runs on WebGL; software rendering keeps it working without a GPU.
        "--use-angle=swiftshader",
        "--enable-unsafe-swiftshader",
        # No name resolves except localhost: any attempt to reach the internet fails.
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost",
    ]
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
    yield browser
    browser.close()


@pytest.fixture
def offline_reader(
    camera_browser: Any, e2e_server: E2EServer
) -> Iterator[Callable[[], tuple[Any, list[str]]]]:
    """A signed-in reader page whose requests may only go to the McGIP server; returns (page, blocked)."""
    contexts: list[Any] = []

    def make(init_script: str | None = None) -> tuple[Any, list[str]]:
        context = camera_browser.new_context(viewport={"width": 1280, "height": 800})
        context.set_default_timeout(30_000)
        contexts.append(context)
        server = urlsplit(e2e_server.base_url).netloc
        blocked: list[str] = []

        def guard(route: Any) -> None:
            if urlsplit(route.request.url).netloc == server:
                route.continue_()
            else:
                blocked.append(route.request.url)
                route.abort()

        context.route("**/*", guard)
        page = context.new_page()
        if init_script:
            page.add_init_script(init_script)
        page.on("console", lambda msg: logger.info("browser console %s: %s", msg.type, msg.text))
        page.goto(f"{e2e_server.base_url}/login")
        page.fill("input[name=username]", "alice")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_selector("[data-testid=whoami]")
        return page, blocked

    yield make
    for context in contexts:
        context.close()


def test_webcam_calibration_validation_and_reading(
    offline_reader: Callable[[], tuple[Any, list[str]]], make_case: Callable[..., int], e2e_server: E2EServer
) -> None:
    case_id = make_case(("alice",), width=320, height=240)
    page, blocked = offline_reader()
    page.goto(f"{e2e_server.base_url}/read/{case_id}?source=webcam")
    # WebGazer loads its face-mesh model from /vendor/webgazer/ and waits for a face.
    page.wait_for_selector("[data-testid=cal-start], [data-testid=page-error]", timeout=180_000)
    assert not page.is_visible("[data-testid=page-error]"), page.text_content("[data-testid=page-error]")
    page.click("[data-testid=cal-start]")
    for index in range(9):
        for _ in range(3):
            page.click(f"[data-testid=cal-point][data-index='{index}']")
    result = page.wait_for_selector("[data-testid=cal-result]", timeout=180_000)
    accuracy_text = page.text_content("[data-testid=cal-accuracy]") or ""
    assert "Mean error" in accuracy_text and "°" in accuracy_text
    if result.get_attribute("data-ok") == "false":
        assert page.is_visible("[data-testid=cal-warning]")  # the recalibration prompt
    page.click("[data-testid=cal-continue]")
    page.wait_for_selector("#reader[data-state=reading]", timeout=60_000)
    assert "Webcam accuracy" in (page.text_content("[data-testid=webcam-accuracy]") or "")
    session_id = int(page.get_attribute("#reader", "data-session-id") or 0)
    page.wait_for_function("window.mcgip.recorder && window.mcgip.recorder.count >= 15", timeout=120_000)
    # Clicks while reading must not train the model (WebGazer's own listeners are removed).
    points_before = page.evaluate("webgazer.getStoredPoints()[0].length")
    page.mouse.click(300, 300)
    page.mouse.click(600, 400)
    assert page.evaluate("webgazer.getStoredPoints()[0].length") == points_before
    finish_case(page, "normal", timeout_ms=60_000)
    # The camera is released when reading stops.
    assert page.evaluate("[...document.querySelectorAll('video')].every((v) => !v.srcObject)")

    session = e2e_server.ok("GET", f"/api/sessions/{session_id}", "alice")
    assert session["source"] == "webcam" and session["status"] == "finished"
    validation = session["source_info"]["calibration"]["validation"]
    assert validation["mean_px"] > 0 and validation["mean_deg"] > 0 and len(validation["points"]) == 5
    assert session["source_info"]["calibration"]["points"] == 9
    samples = stored_samples(e2e_server, session_id, "alice")
    assert len(samples) >= 15
    flags = samples[:, C["flags"]].astype(int)
    assert (flags & FLAG_EYE).all() and (flags & FLAG_VISIBLE).all()
    assert (flags & FLAG_VALID).sum() >= len(samples) // 2  # the face is in view
    invalid = flags & FLAG_VALID == 0
    assert (samples[invalid, C["screen_x"]] == -1).all()
    assert blocked == [], f"requests left the server: {blocked[:5]}"


def test_denied_camera_explains_and_falls_back(
    offline_reader: Callable[..., tuple[Any, list[str]]], make_case: Callable[..., int], e2e_server: E2EServer
) -> None:
    case_id = make_case(("alice",))
    deny = (
        "navigator.mediaDevices.getUserMedia = () => "
        "Promise.reject(new DOMException('camera blocked', 'NotAllowedError'));"
    )
    page, _ = offline_reader(deny)
    page.goto(f"{e2e_server.base_url}/read/{case_id}?source=webcam")
    problem = page.wait_for_selector("[data-testid=camera-problem]")
    assert "permission was denied" in (problem.text_content() or "")
    # The failed camera left no empty webcam session behind.
    sessions = e2e_server.ok("GET", f"/api/sessions?case_id={case_id}", user="admin")
    items = sessions["items"] if isinstance(sessions, dict) else sessions
    assert [s for s in items if s["source"] == "webcam"] == []
    page.click("[data-testid=camera-fallback]")
    page.wait_for_selector("#reader[data-state=reading]")
    assert "source=mouse" in page.url
    assert (page.text_content("[data-testid=source-kind]") or "").startswith("mouse")
