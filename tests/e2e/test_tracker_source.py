"""The browser's eye-gaze modules: accuracy arithmetic (pure), and the tracker source end to end
(fake Gazepoint -> tracker bridge -> relay -> reading page -> /ws/gaze -> stored samples)."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from server.tracker_bridge.bridge import Bridge, relay_url
from server.tracker_bridge.gazepoint import GazepointTracker
from tests.e2e.conftest import E2EServer
from tests.e2e.reading_support import FLAG_EYE, FLAG_VALID, C, finish_case, stored_samples
from tests.server.tracker_bridge.fake_gazepoint import FakeGazepoint

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def page(e2e_server: E2EServer, browser: Any) -> Iterator[Any]:
    context = browser.new_context()
    pg = context.new_page()
    pg.goto(f"{e2e_server.base_url}/login")
    yield pg
    context.close()


def test_accuracy_in_pixels_and_degrees(page: Any) -> None:
    out = page.evaluate("""async () => {
      const A = await import('/static/js/gaze/accuracy.js');
      const settings = {screen_mm_w: 500, distance_mm: 600, bound_deg: 2};
      const r = A.accuracy([
        {target: [100, 100], predictions: [[110, 100], [100, 130]]},   // errors 10 and 30 -> 20
        {target: [500, 300], predictions: [[500, 340]]},                // 40
        {target: [900, 700], predictions: []},                           // no gaze: missing
      ], settings, 1000);
      return {r, deg: A.pxToDeg(100, settings, 1000), bad: A.needsRecalibration(r, settings),
              good: A.needsRecalibration({...r, missing: 0, mean_deg: 1.5}, settings),
              norm: A.normaliseSettings({screen_mm_w: '-3', distance_mm: '700'})};
    }""")
    r = out["r"]
    assert (r["mean_px"], r["max_px"], r["missing"], r["samples"]) == (30, 40, 1, 3)
    # 100 px = 50 mm at 600 mm: 2 atan(25 / 600).
    assert out["deg"] == pytest.approx(2 * math.degrees(math.atan(25 / 600)))
    assert r["mean_deg"] == pytest.approx(2 * math.degrees(math.atan(7.5 / 600)), abs=0.01)
    assert out["bad"] is True and out["good"] is False
    assert out["norm"] == {"screen_mm_w": 530, "distance_mm": 700, "bound_deg": 5}


def test_tracker_bridge_into_the_reading_page(
    login: Callable[..., Any], make_case: Callable[..., int], e2e_server: E2EServer
) -> None:
    case_id = make_case(("alice",), width=320, height=240)
    reader = login("alice")
    reader.goto(f"{e2e_server.base_url}/read/{case_id}?source=tracker")
    reader.wait_for_selector("#reader[data-state=reading]")
    session_id = int(reader.get_attribute("#reader", "data-session-id") or 0)
    n = 120
    rng = np.random.default_rng(1)
    # Five decimals, as the Open Gaze API sends them.
    points = [(round(float(x), 5), round(float(y), 5), 1) for x, y in rng.uniform(0.2, 0.8, (n, 2))]
    points[5] = (0.0, 0.0, 0)
    tracker = FakeGazepoint(points, rate_hz=60)
    bridge = Bridge(
        GazepointTracker(port=tracker.port), relay_url(e2e_server.base_url, e2e_server.token("alice"))
    )
    thread = threading.Thread(target=bridge.run, kwargs={"duration_s": 30}, daemon=True)
    thread.start()
    reader.wait_for_function(f"window.mcgip.recorder.count >= {n}", timeout=30_000)
    thread.join(timeout=30)
    geometry = reader.evaluate("""() => ({sw: screen.width, sh: screen.height, sx: screenX, sy: screenY,
      cx: outerWidth - innerWidth, cy: outerHeight - innerHeight})""")
    finish_case(reader, "normal")

    session = e2e_server.ok("GET", f"/api/sessions/{session_id}", "alice")
    assert session["source"] == "tracker"
    assert session["source_info"]["tracker"]["calibration"]["mean_error_px"] == 21.5
    samples = stored_samples(e2e_server, session_id, "alice")
    assert len(samples) == n
    flags = samples[:, C["flags"]].astype(int)
    assert (flags & FLAG_EYE).all() and not flags[5] & FLAG_VALID and (flags & FLAG_VALID).sum() == n - 1
    ok = np.arange(n) != 5
    fx = np.asarray([p[0] for p in points])[ok]
    expected_x = fx * geometry["sw"] - geometry["sx"] - max(0, geometry["cx"]) / 2
    np.testing.assert_allclose(samples[ok, C["screen_x"]], expected_x, atol=1e-6)
    assert np.median(np.diff(samples[:, C["t_ms"]])) == pytest.approx(1000 / 60, abs=0.05)
