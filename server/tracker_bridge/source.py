"""What every tracker reader yields to the bridge."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class TrackerSample:
    """One gaze sample.

    Attributes:
        t_s: Time on the tracker's clock (seconds).
        x, y: Point of gaze as fractions of the tracker's screen (0..1 from the top-left corner).
        valid: The tracker had a gaze point (eyes found).
    """

    t_s: float
    x: float
    y: float
    valid: bool


@dataclass(frozen=True)
class TrackerInfo:
    """Details the tracker reported (model, rate, calibration quality); sent to the viewer."""

    info: dict[str, Any]


TrackerEvent = TrackerSample | TrackerInfo


class Tracker(Protocol):
    """A tracker reader: ``events()`` blocks for the next items; ``close()`` ends it."""

    def events(self) -> Iterator[TrackerEvent]: ...

    def close(self) -> None: ...
