"""Parsing and validating client messages of the gaze WebSocket (pure functions, no I/O).

Every rejection is a ``ProtocolError`` whose ``code`` and ``detail`` go into the error frame sent
back, so the client learns exactly what was wrong with which frame.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import chain
from typing import Any, Final, NamedTuple, NoReturn, TypeGuard

import numpy as np
import orjson

from server.reading.samples import COLUMN, MAX_FLAGS, N_COLUMNS
from trainer.arrays import FloatArray

MAX_MESSAGE_BYTES: Final = 1024 * 1024
MAX_SAMPLES_PER_FRAME: Final = 2000
#: Largest accepted timestamp: 7 days in ms (client clocks start near 0 at page load).
MAX_T_MS: Final = 7 * 24 * 3600 * 1000.0
#: Largest accepted sequence number (exact in a JSON double and in a BIGINT column).
MAX_SEQ: Final = 2**53 - 1
_NUMBER_TYPES: Final = frozenset({int, float})
#: Valid values of the flags column.
_FLAG_VALUES: Final = frozenset(range(MAX_FLAGS + 1))


class ProtocolError(Exception):
    """A message the server refuses; the socket stays open."""

    def __init__(self, code: str, detail: str, seq: int | None = None) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.seq = seq


#: Acknowledgement modes a hello may ask for: one ``ack`` per frame, or one ``acks`` per commit.
ACK_MODES: Final = ("each", "batch")


@dataclass(frozen=True)
class Hello:
    """A validated hello; ``acks`` is the acknowledgement mode (``ACK_MODES``; default ``each``)."""

    session_id: int
    acks: str = "each"


class Frame(NamedTuple):
    """A validated frame (a named tuple: built for every message, cheaper than a dataclass).

    Attributes:
        seq: Per-session sequence number (>= 0).
        samples: ``(n, 18)`` float64, all finite, timestamps non-decreasing.
    """

    seq: int
    samples: FloatArray


def _reject_constant(name: str) -> NoReturn:
    # json.loads accepts NaN/Infinity literals by default; the protocol does not.
    raise ProtocolError("not_finite", f"non-finite number {name} is not allowed")


def _is_int(value: Any) -> TypeGuard[int]:
    return type(value) is int  # bool is a subclass of int and must not pass


def _parse_slowly(text: str) -> Any:
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except ProtocolError:
        raise
    except (ValueError, RecursionError) as exc:
        raise ProtocolError("bad_json", f"message is not valid JSON: {exc}") from None


def parse_message(text: str | bytes | None) -> Hello | Frame:
    """Parse one client message.

    Args:
        text: The message as received (``bytes`` for a binary message, which is refused).

    Raises:
        ProtocolError: with code too_large, bad_json, not_finite, bad_frame, bad_sample or
            bad_timestamp.
    """
    if not isinstance(text, str):
        raise ProtocolError("bad_frame", "messages must be JSON text, not binary")
    # A character takes 1-4 UTF-8 bytes: only long texts need their encoded size measured.
    if len(text) > MAX_MESSAGE_BYTES // 4 and len(text.encode("utf-8")) > MAX_MESSAGE_BYTES:
        raise ProtocolError("too_large", f"message exceeds {MAX_MESSAGE_BYTES} bytes")
    try:
        # orjson parses ~4x faster; it refuses NaN/Infinity, out-of-range numbers and deep nesting,
        # and the standard parser then names what exactly was wrong. Every number orjson returns is
        # finite (integers beyond 64 bits become floats, floats beyond double range are refused).
        message = orjson.loads(text)
        all_finite = True
    except orjson.JSONDecodeError:
        message = _parse_slowly(text)
        all_finite = False
    if not isinstance(message, dict):
        raise ProtocolError("bad_frame", "message must be a JSON object")
    kind = message.get("type")
    if kind == "frame":
        # JSON literals true/false/null would pass numpy's number conversion; only then check types.
        # true and null contain a "u", false an "f" besides the one of "frame" (a type spelled with
        # escapes has a "u"); two single-character scans cost less than searching for the words.
        literals = "u" in text or text.count("f") > 1
        return _parse_frame(message, strict_types=literals, all_finite=all_finite)
    if kind == "hello":
        session_id = message.get("session_id")
        if not _is_int(session_id) or not 0 < session_id <= MAX_SEQ:
            raise ProtocolError("bad_frame", "hello needs a positive integer session_id")
        acks = message.get("acks", "each")
        if acks not in ACK_MODES:
            modes = ", ".join(ACK_MODES)
            raise ProtocolError("bad_frame", f"hello acks must be one of {modes}, got {acks!r}")
        return Hello(session_id=session_id, acks=acks)
    raise ProtocolError("bad_frame", f"unknown message type {kind!r}; expected 'hello' or 'frame'")


def _parse_frame(message: dict[str, Any], *, strict_types: bool, all_finite: bool = False) -> Frame:
    seq = message.get("seq")
    if not _is_int(seq) or not 0 <= seq <= MAX_SEQ:
        raise ProtocolError("bad_frame", f"seq must be an integer in 0..{MAX_SEQ}, got {seq!r}")
    rows = message.get("samples")
    if not isinstance(rows, list):
        raise ProtocolError("bad_frame", "samples must be a list of samples", seq)
    if not rows:
        raise ProtocolError("bad_frame", "a frame needs at least one sample", seq)
    if len(rows) > MAX_SAMPLES_PER_FRAME:
        raise ProtocolError(
            "too_large", f"{len(rows)} samples; at most {MAX_SAMPLES_PER_FRAME} per frame", seq
        )
    samples = _to_array(rows, seq, strict_types)
    if not all_finite and not np.isfinite(samples).all():
        row = int(np.nonzero(~np.isfinite(samples).all(axis=1))[0][0])
        raise ProtocolError("not_finite", f"sample {row} holds a non-finite number", seq)
    _check_flags(samples, seq)
    _check_timestamps(samples[:, COLUMN["t_ms"]], seq)
    return Frame(seq=seq, samples=samples)


def _to_array(rows: list[Any], seq: int, strict_types: bool) -> FloatArray:
    """``(n, 18)`` float64 from JSON rows that must all be lists of 18 numbers."""
    if not strict_types:
        # Fast path (about half the cost of numpy's conversion of nested lists, which discovers
        # shape and dtype value by value): every row has 18 entries, and ``struct`` packs exactly
        # 18 * n of them as doubles only if each is an int or float (booleans are excluded by
        # ``strict_types``; strings, null, nested lists and objects raise). Anything else takes
        # the checked path below, which names the problem.
        try:
            if set(map(len, rows)) == {N_COLUMNS}:
                packed = _pack_rows(len(rows), chain.from_iterable(rows))
                return np.frombuffer(packed, dtype=np.float64).reshape(len(rows), N_COLUMNS)
        except (TypeError, struct.error, OverflowError):
            pass
    shapes_ok = all(type(row) is list and len(row) == N_COLUMNS for row in rows)
    if not shapes_ok or not set(map(type, chain.from_iterable(rows))) <= _NUMBER_TYPES:
        _explain_bad_sample(rows, seq)
    try:
        return np.array(rows, dtype=np.float64)
    except OverflowError:
        raise ProtocolError("not_finite", "a number is too large for a 64-bit float", seq) from None


def _pack_rows(n_rows: int, values: Iterable[Any]) -> bytearray:
    """``n_rows * 18`` numbers as native doubles (a writable buffer, so the array is writable)."""
    fmt = _ROW_FORMATS.get(n_rows)
    if fmt is None:
        fmt = _ROW_FORMATS[n_rows] = struct.Struct(f"={n_rows * N_COLUMNS}d")
    buffer = bytearray(fmt.size)
    fmt.pack_into(buffer, 0, *values)
    return buffer


#: Compiled ``struct`` formats by row count (at most ``MAX_SAMPLES_PER_FRAME`` entries).
_ROW_FORMATS: dict[int, struct.Struct] = {}


def _explain_bad_sample(rows: list[Any], seq: int) -> NoReturn:
    for i, row in enumerate(rows):
        if type(row) is not list:
            raise ProtocolError("bad_sample", f"sample {i} is not a list", seq)
        if len(row) != N_COLUMNS:
            raise ProtocolError("bad_sample", f"sample {i} has {len(row)} values, expected {N_COLUMNS}", seq)
        for column, value in enumerate(row):
            if type(value) not in _NUMBER_TYPES:
                raise ProtocolError(
                    "bad_sample",
                    f"sample {i} column {column} ({_column_name(column)}) must be a number, "
                    f"got {type(value).__name__}",
                    seq,
                )
    raise AssertionError("unreachable: every sample looked valid")  # pragma: no cover


def _column_name(column: int) -> str:
    for name, index in COLUMN.items():
        if index == column:
            return name
    return "?"


def _check_flags(samples: FloatArray, seq: int) -> None:
    flags = samples[:, COLUMN["flags"]]
    # One set lookup per distinct value (floats equal to an integer hash like it) costs less than
    # the five array operations below, which only run to name the bad row.
    if set(flags.tolist()) <= _FLAG_VALUES:
        return
    bad = (flags != np.floor(flags)) | (flags < 0) | (flags > MAX_FLAGS)
    if bad.any():
        row = int(np.argmax(bad))
        raise ProtocolError("bad_sample", f"sample {row} flags must be an integer in 0..{MAX_FLAGS}", seq)


def _check_timestamps(t_ms: FloatArray, seq: int) -> None:
    # On a Python list: a few array operations on a typical frame of ~12 samples cost more.
    times = t_ms.tolist()
    if times != sorted(times):
        backwards = t_ms[1:] < t_ms[:-1]
        row = int(np.argmax(backwards)) + 1
        raise ProtocolError("bad_timestamp", f"t_ms decreases at sample {row} within the frame", seq)
    # Non-decreasing, so the first and last samples bound the rest.
    if times[0] < 0 or times[-1] > MAX_T_MS:
        raise ProtocolError("bad_timestamp", f"t_ms must lie in 0..{MAX_T_MS:.0f} ms", seq)
