"""Open Gaze API parsing, the tracker clock, relay message validation, Tobii samples."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from types import SimpleNamespace
from typing import Any

import pytest

from server.tracker_bridge.bridge import relay_url
from server.tracker_bridge.clock import TrackerClock
from server.tracker_bridge.gazepoint import parse_line
from server.tracker_bridge.messages import RelayError, parse_bridge_message
from server.tracker_bridge.source import TrackerInfo, TrackerSample
from server.tracker_bridge.tobii import TobiiTracker, sample_from


def test_parse_records_and_acks() -> None:
    rec = parse_line(
        '<REC TIME="12.5" FPOGX="0.25" FPOGY="0.75" FPOGS="12.4" FPOGD="0.1" FPOGID="3" FPOGV="1" />'
    )
    assert rec == TrackerSample(12.5, 0.25, 0.75, True)
    lost = parse_line('<REC TIME="12.6" FPOGX="0.25" FPOGY="0.75" FPOGV="0" />')
    assert isinstance(lost, TrackerSample) and not lost.valid
    cal = parse_line('<ACK ID="CALIBRATE_RESULT_SUMMARY" AVE_ERROR="19.6" VALID_POINTS="8" />')
    assert cal == TrackerInfo(
        {"calibration": {"source": "tracker", "mean_error_px": 19.6, "valid_points": 8}}
    )
    points = parse_line(
        '<CAL ID="CALIB_RESULT" CALX1="0.1" CALY1="0.2" LX1="0.11" LY1="0.2" LV1="1" '
        'RX1="0.1" RY1="0.21" RV1="1" />'
    )
    assert isinstance(points, TrackerInfo) and points.info["calibration_points"][0]["lx"] == 0.11
    assert parse_line('<ACK ID="ENABLE_SEND_DATA" STATE="1" />') is None
    with pytest.raises(ET.ParseError):
        parse_line("<REC TIME=")


def test_clock_takes_the_least_delayed_arrival_and_restarts_on_a_jump() -> None:
    clock = TrackerClock(window_s=10)
    # Samples every 10 ms on the tracker; arrivals late by 5, 2, 9 ms after an epoch offset of 1000 s.
    for t, delay in ((0.00, 0.005), (0.01, 0.002), (0.02, 0.009)):
        clock.observe(t, 1000.0 + t + delay)
    assert clock.to_epoch_ms(0.02) == pytest.approx((1000.02 + 0.002) * 1000)
    # Past the window, an old minimum no longer counts.
    clock.observe(20.0, 1000.0 + 20.0 + 0.004)
    assert clock.to_epoch_ms(20.0) == pytest.approx((1020.0 + 0.004) * 1000)
    clock.observe(1.0, 5000.0)  # the tracker restarted: its clock went back
    assert clock.to_epoch_ms(1.0) == pytest.approx(5000.0 * 1000)
    with pytest.raises(RuntimeError):
        TrackerClock().to_epoch_ms(0.0)


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ("{", "bad_json"),
        ("[]", "bad_message"),
        ('{"type": "samples", "samples": []}', "bad_message"),
        ('{"type": "samples", "samples": [[1, 0.5, 0.5]]}', "bad_sample"),
        ('{"type": "samples", "samples": [[1, 0.5, "x", 1]]}', "bad_sample"),
        ('{"type": "samples", "samples": [[1, NaN, 0.5, 1]]}', "bad_sample"),
        ('{"type": "samples", "samples": [[1, 0.5, 0.5, 2]]}', "bad_sample"),
        ('{"type": "samples", "samples": [[1, 50, 0.5, 1]]}', "bad_sample"),
        ('{"type": "tracker", "info": 3}', "bad_message"),
        ('{"type": "hello"}', "bad_message"),
    ],
)
def test_relay_rejects_bad_messages(message: str, code: str) -> None:
    with pytest.raises(RelayError) as caught:
        parse_bridge_message(message)
    assert caught.value.code == code


def test_relay_accepts_samples_and_info() -> None:
    ok = parse_bridge_message(
        json.dumps({"type": "samples", "samples": [[1.5, 0.1, 0.9, 1], [2, -5, -5, 0]]})
    )
    assert ok == {"type": "samples", "samples": [[1.5, 0.1, 0.9, 1.0], [2.0, -5.0, -5.0, 0.0]]}
    assert parse_bridge_message('{"type": "tracker", "info": {"model": "GP3"}}')["info"] == {"model": "GP3"}


def test_relay_url() -> None:
    assert relay_url("http://h:8000/", "t k") == "ws://h:8000/ws/tracker?role=bridge&token=t+k"
    assert relay_url("https://x.org/mcgip", "a").startswith("wss://x.org/mcgip/ws/tracker?")
    with pytest.raises(ValueError):
        relay_url("ftp://h", "a")


def test_tobii_samples_average_valid_eyes() -> None:
    both = {"left_gaze_point_on_display_area": (0.2, 0.4), "left_gaze_point_validity": 1,
            "right_gaze_point_on_display_area": (0.4, 0.6), "right_gaze_point_validity": 1,
            "system_time_stamp": 2_500_000}  # fmt: skip
    assert sample_from(both) == TrackerSample(2.5, pytest.approx(0.3), pytest.approx(0.5), True)  # type: ignore[arg-type]
    one = {**both, "left_gaze_point_validity": 0}
    assert sample_from(one) == TrackerSample(2.5, 0.4, 0.6, True)
    assert not sample_from({**one, "right_gaze_point_validity": 0}).valid


def test_tobii_tracker_with_a_stand_in_sdk() -> None:
    subscribed: list[Any] = []
    device = SimpleNamespace(
        address="tet-tcp://1", model="Pro Spectrum", serial_number="S1",
        get_gaze_output_frequency=lambda: 600.0,
        subscribe_to=lambda kind, cb, as_dictionary: subscribed.append(cb),
        unsubscribe_from=lambda kind, cb: subscribed.remove(cb),
    )  # fmt: skip
    sdk = SimpleNamespace(EYETRACKER_GAZE_DATA="gaze", find_all_eyetrackers=lambda: [device])
    tracker = TobiiTracker(module=sdk)
    events = tracker.events()
    info = next(events)
    assert isinstance(info, TrackerInfo) and info.info["rate_hz"] == 600.0
    sample = {"left_gaze_point_on_display_area": (0.5, 0.5), "left_gaze_point_validity": 1,
              "right_gaze_point_on_display_area": (0.5, 0.5), "right_gaze_point_validity": 0,
              "system_time_stamp": 10}  # fmt: skip
    tracker._queue.put(sample_from(sample))
    assert next(events) == TrackerSample(1e-5, 0.5, 0.5, True)
    tracker.close()
    assert list(events) == [] and subscribed == []
    with pytest.raises(RuntimeError, match="no Tobii tracker found at x"):
        TobiiTracker(address="x", module=sdk)
