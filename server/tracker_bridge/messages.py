"""The messages of the ``/ws/tracker`` relay (shared by the bridge and the server).

bridge -> server -> viewer pages of the same reader::

    {"type": "samples", "samples": [[t_epoch_ms, x, y, valid], ...]}
    {"type": "tracker", "info": {...}}     tracker model, rate, calibration quality

``x``/``y`` are fractions of the tracker's screen (0..1, left/top origin; points slightly off the
screen are allowed); ``t_epoch_ms`` is the sample's time on the reading station's wall clock in
ms since the Unix epoch; ``valid`` is 1 when the tracker had a gaze point, else 0.

server -> bridge: ``{"type": "status", "viewers": n}``; server -> viewer: ``{"type": "status",
"bridges": n}``; to either: ``{"type": "error", "code": ..., "detail": ...}``.
"""

from __future__ import annotations

import json
import math
from typing import Any, Final

MAX_MESSAGE_BYTES: Final = 256 * 1024
MAX_SAMPLES: Final = 1000
MAX_INFO_BYTES: Final = 8 * 1024
#: Normalised coordinates outside this range are not plausible screen points.
COORD_RANGE: Final = (-1.0, 2.0)


class RelayError(ValueError):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def _sample(row: Any, i: int) -> list[float]:
    if not isinstance(row, list) or len(row) != 4:
        raise RelayError("bad_sample", f"sample {i} must be [t_epoch_ms, x, y, valid]")
    if not all(type(v) in (int, float) for v in row):
        raise RelayError("bad_sample", f"sample {i} must hold numbers only")
    t, x, y, valid = (float(v) for v in row)
    if not all(math.isfinite(v) for v in (t, x, y)) or t < 0:
        raise RelayError("bad_sample", f"sample {i} has a non-finite or negative value")
    if valid not in (0.0, 1.0):
        raise RelayError("bad_sample", f"sample {i}: valid must be 0 or 1")
    if valid and not (COORD_RANGE[0] <= x <= COORD_RANGE[1] and COORD_RANGE[0] <= y <= COORD_RANGE[1]):
        raise RelayError("bad_sample", f"sample {i}: x, y must be screen fractions")
    return [t, x, y, valid]


def parse_bridge_message(text: str) -> dict[str, Any]:
    """Validate a message from a bridge; returns it normalised for the viewers.

    Raises:
        RelayError: too_large, bad_json, bad_message or bad_sample.
    """
    if len(text.encode("utf-8")) > MAX_MESSAGE_BYTES:
        raise RelayError("too_large", f"message exceeds {MAX_MESSAGE_BYTES} bytes")
    try:
        message = json.loads(text, parse_constant=lambda name: float("nan"))
    except (ValueError, RecursionError) as exc:
        raise RelayError("bad_json", f"not JSON: {exc}") from None
    if not isinstance(message, dict):
        raise RelayError("bad_message", "message must be a JSON object")
    kind = message.get("type")
    if kind == "samples":
        rows = message.get("samples")
        if not isinstance(rows, list) or not 0 < len(rows) <= MAX_SAMPLES:
            raise RelayError("bad_message", f"samples must be a list of 1..{MAX_SAMPLES} samples")
        return {"type": "samples", "samples": [_sample(row, i) for i, row in enumerate(rows)]}
    if kind == "tracker":
        info = message.get("info")
        if not isinstance(info, dict):
            raise RelayError("bad_message", "tracker info must be an object")
        try:
            size = len(json.dumps(info, allow_nan=False))
        except ValueError:
            raise RelayError("bad_message", "tracker info must hold finite numbers") from None
        if size > MAX_INFO_BYTES:
            raise RelayError("too_large", f"tracker info exceeds {MAX_INFO_BYTES} bytes")
        return {"type": "tracker", "info": info}
    raise RelayError("bad_message", f"unknown message type {kind!r}; expected 'samples' or 'tracker'")
