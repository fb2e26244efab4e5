"""``--simulate``: a tracker stand-in producing plausible gaze in real time (demos, tests)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import numpy as np

from server.tracker_bridge.source import TrackerEvent, TrackerInfo, TrackerSample


class SimulatedTracker:
    """Fixations of 150-450 ms at random screen points with 0.3% noise, and rare blinks.

    Args:
        rate_hz: Samples per second.
        seed: Random seed.
    """

    def __init__(self, rate_hz: float = 60.0, seed: int = 0) -> None:
        if rate_hz <= 0:
            raise ValueError(f"rate_hz must be > 0, got {rate_hz}")
        self.rate_hz = rate_hz
        self.rng = np.random.default_rng(seed)
        self._stop = threading.Event()

    def events(self) -> Iterator[TrackerEvent]:
        yield TrackerInfo({"tracker": "simulated", "rate_hz": self.rate_hz})
        period = 1.0 / self.rate_hz
        start = time.monotonic()
        i = 0
        target = self.rng.uniform(0.2, 0.8, 2)
        fixation_end = 0.0
        blink_end = -1.0
        while not self._stop.is_set():
            t = i * period
            wait = start + t - time.monotonic()
            if wait > 0 and self._stop.wait(wait):
                return
            if t >= fixation_end:
                target = np.clip(target + self.rng.normal(0, 0.2, 2), 0.05, 0.95)
                fixation_end = t + self.rng.uniform(0.15, 0.45)
                if self.rng.random() < 0.03:
                    blink_end = t + 0.12
            if t < blink_end:
                yield TrackerSample(t, -1.0, -1.0, False)
            else:
                x, y = target + self.rng.normal(0, 0.003, 2)
                yield TrackerSample(t, float(x), float(y), True)
            i += 1

    def close(self) -> None:
        self._stop.set()
