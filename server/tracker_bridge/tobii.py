"""Tobii Pro trackers through the Tobii Pro SDK (``tobii_research``), when it is installed.

Gaze arrives on an SDK thread as dictionaries with, per eye, ``*_gaze_point_on_display_area``
(fractions of the display area, top-left origin) and ``*_gaze_point_validity``; the point is the
mean of the valid eyes. Time is ``system_time_stamp`` (microseconds on the host's clock).
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import math
import queue
from collections.abc import Iterator
from typing import Any

from server.tracker_bridge.source import TrackerEvent, TrackerInfo, TrackerSample

logger = logging.getLogger(__name__)


def tobii_available() -> bool:
    return importlib.util.find_spec("tobii_research") is not None


def sample_from(data: dict[str, Any]) -> TrackerSample:
    """A bridge sample from one Tobii gaze-data dictionary."""
    points = []
    for eye in ("left", "right"):
        x, y = data.get(f"{eye}_gaze_point_on_display_area", (math.nan, math.nan))
        if data.get(f"{eye}_gaze_point_validity") and math.isfinite(x) and math.isfinite(y):
            points.append((x, y))
    t_s = float(data["system_time_stamp"]) / 1e6
    if not points:
        return TrackerSample(t_s, -1.0, -1.0, False)
    return TrackerSample(
        t_s, sum(p[0] for p in points) / len(points), sum(p[1] for p in points) / len(points), True
    )


class TobiiTracker:
    """Reads the first Tobii Pro tracker found (or the one at ``address``).

    Args:
        address: Tracker address (e.g. ``tet-tcp://10.0.0.2``); first found when None.
        module: The ``tobii_research`` module (tests pass a stand-in).

    Raises:
        RuntimeError: the SDK is missing or no tracker is connected.
    """

    def __init__(self, address: str | None = None, module: Any = None) -> None:
        if module is None:
            if not tobii_available():
                raise RuntimeError("the Tobii Pro SDK (tobii_research) is not installed")
            module = importlib.import_module("tobii_research")
        self.sdk = module
        trackers = list(module.find_all_eyetrackers())
        if address is not None:
            trackers = [t for t in trackers if t.address == address]
        if not trackers:
            raise RuntimeError(f"no Tobii tracker found{' at ' + address if address else ''}")
        self.tracker = trackers[0]
        self._queue: queue.Queue[TrackerEvent | None] = queue.Queue(maxsize=100_000)
        self._subscribed = False

    def _on_gaze(self, data: dict[str, Any]) -> None:
        try:
            self._queue.put_nowait(sample_from(data))
        except queue.Full:
            logger.warning("tobii samples are not being read; dropping")

    def events(self) -> Iterator[TrackerEvent]:
        tracker = self.tracker
        yield TrackerInfo(
            {
                "tracker": "tobii",
                "model": getattr(tracker, "model", ""),
                "serial": getattr(tracker, "serial_number", ""),
                "rate_hz": float(tracker.get_gaze_output_frequency()),
            }
        )
        tracker.subscribe_to(self.sdk.EYETRACKER_GAZE_DATA, self._on_gaze, as_dictionary=True)
        self._subscribed = True
        while True:
            event = self._queue.get()
            if event is None:
                return
            yield event

    def close(self) -> None:
        if self._subscribed:
            self.tracker.unsubscribe_from(self.sdk.EYETRACKER_GAZE_DATA, self._on_gaze)
            self._subscribed = False
        self._queue.put(None)
