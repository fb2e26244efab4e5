"""Mapping a tracker's own clock onto the reading station's wall clock.

Trackers stamp samples on their own clock (Gazepoint: seconds since the tracker started; Tobii:
microseconds). The viewer page places samples on the session clock through wall-clock time
(``performance.timeOrigin`` + page time = epoch ms on the same machine), so the bridge converts
tracker time to epoch ms: ``epoch = tracker + offset``. Each sample arrives some (variable) delay
after it was taken, so ``arrival - tracker`` over-estimates the offset by that delay; the smallest
value seen is the best estimate (the least-delayed sample). The estimate is refreshed over a sliding
window so slow relative drift of the two clocks cannot accumulate, and starts over when the
tracker clock jumps backwards (tracker restarted).
"""

from __future__ import annotations

from collections import deque
from typing import Final

WINDOW_S: Final = 30.0


class TrackerClock:
    """Tracker seconds -> epoch milliseconds.

    Args:
        window_s: Seconds of arrivals over which the minimum offset is taken.
    """

    def __init__(self, window_s: float = WINDOW_S) -> None:
        if window_s <= 0:
            raise ValueError(f"window_s must be > 0, got {window_s}")
        self.window_s = window_s
        # (tracker time, offset) pairs with increasing offsets: a monotonic deque for the window minimum.
        self._window: deque[tuple[float, float]] = deque()
        self._last_tracker: float | None = None

    def reset(self) -> None:
        self._window.clear()
        self._last_tracker = None

    def observe(self, tracker_s: float, arrival_epoch_s: float) -> None:
        """Record that the sample stamped ``tracker_s`` arrived at wall-clock ``arrival_epoch_s``."""
        if self._last_tracker is not None and tracker_s < self._last_tracker - 1e-6:
            self.reset()
        self._last_tracker = tracker_s
        offset = arrival_epoch_s - tracker_s
        while self._window and self._window[-1][1] >= offset:
            self._window.pop()
        self._window.append((tracker_s, offset))
        while self._window and self._window[0][0] < tracker_s - self.window_s:
            self._window.popleft()

    def to_epoch_ms(self, tracker_s: float) -> float:
        """Wall-clock time of a tracker timestamp, in ms since the Unix epoch.

        Raises:
            RuntimeError: before the first ``observe``.
        """
        if not self._window:
            raise RuntimeError("no sample observed yet")
        return (tracker_s + self._window[0][1]) * 1000.0
