"""The gaze message parser on its own: every kind of bad message, and what a good one yields."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from server.reading.frames import (
    MAX_MESSAGE_BYTES,
    MAX_SAMPLES_PER_FRAME,
    Frame,
    Hello,
    ProtocolError,
    parse_message,
)
from tests.server.reading.conftest import frame, make_samples


def good(seq: int = 0) -> dict[str, Any]:
    return frame(seq, make_samples(4))


def mutate(seq: int, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    msg = good(seq)
    change(msg)
    return msg


def set_value(row: int, col: int, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(msg: dict[str, Any]) -> None:
        msg["samples"][row][col] = value

    return change


#: (name, message, expected error code, expected seq in the error frame)
BAD_MESSAGES: list[tuple[str, str | bytes, str, int | None]] = [
    ("bad_json", '{"type": "frame", "seq": 0, "samples": [[1, 2', "bad_json", None),
    ("nan_literal", json.dumps(good()).replace("15,", "NaN,", 1), "not_finite", None),
    ("infinity_literal", json.dumps(good()).replace("2048.0", "-Infinity", 1), "not_finite", None),
    ("overflow_to_inf", json.dumps(good(2)).replace("2048.0", "1e999", 1), "not_finite", 2),
    ("not_an_object", "[1, 2, 3]", "bad_frame", None),
    ("unknown_type", json.dumps({"type": "gaze", "seq": 0}), "bad_frame", None),
    ("hello_without_id", json.dumps({"type": "hello"}), "bad_frame", None),
    ("seq_string", json.dumps({**good(), "seq": "0"}), "bad_frame", None),
    ("seq_negative", json.dumps({**good(), "seq": -1}), "bad_frame", None),
    ("seq_bool", json.dumps({**good(), "seq": True}), "bad_frame", None),
    ("seq_float", json.dumps({**good(), "seq": 1.5}), "bad_frame", None),
    ("seq_huge", json.dumps({**good(), "seq": 2**63}), "bad_frame", None),
    ("samples_missing", json.dumps({"type": "frame", "seq": 3}), "bad_frame", 3),
    ("samples_not_list", json.dumps({"type": "frame", "seq": 3, "samples": {"0": 1}}), "bad_frame", 3),
    ("samples_empty", json.dumps(frame(3, [])), "bad_frame", 3),
    ("sample_not_list", json.dumps(mutate(4, lambda m: m["samples"].__setitem__(1, 5))), "bad_sample", 4),
    ("too_few_columns", json.dumps(mutate(4, lambda m: m["samples"][2].pop())), "bad_sample", 4),
    ("too_many_columns", json.dumps(mutate(4, lambda m: m["samples"][0].append(1))), "bad_sample", 4),
    ("string_value", json.dumps(mutate(5, set_value(0, 3, "12.5"))), "bad_sample", 5),
    ("null_value", json.dumps(mutate(5, set_value(1, 4, None))), "bad_sample", 5),
    ("bool_value", json.dumps(mutate(5, set_value(1, 6, True))), "bad_sample", 5),
    ("false_value", json.dumps(mutate(5, set_value(1, 6, False))), "bad_sample", 5),
    ("false_flags", json.dumps(mutate(5, set_value(0, 5, False))), "bad_sample", 5),
    (
        "escaped_type_and_bool",
        json.dumps(mutate(5, set_value(2, 1, True))).replace("frame", "\\u0066rame"),
        "bad_sample",
        5,
    ),
    ("nested_list_value", json.dumps(mutate(5, set_value(1, 6, [1]))), "bad_sample", 5),
    ("huge_integer", json.dumps(mutate(5, set_value(1, 6, 10**400))), "not_finite", 5),
    ("fractional_flags", json.dumps(mutate(5, set_value(0, 5, 1.5))), "bad_sample", 5),
    ("negative_flags", json.dumps(mutate(5, set_value(0, 5, -1))), "bad_sample", 5),
    ("flags_too_big", json.dumps(mutate(5, set_value(0, 5, 256))), "bad_sample", 5),
    ("negative_time", json.dumps(mutate(6, set_value(0, 0, -5.0))), "bad_timestamp", 6),
    ("absurd_time", json.dumps(mutate(6, set_value(3, 0, 1e12))), "bad_timestamp", 6),
    ("time_goes_back", json.dumps(mutate(6, set_value(2, 0, 0.0))), "bad_timestamp", 6),
    ("too_many_samples", json.dumps(frame(7, make_samples(1) * (MAX_SAMPLES_PER_FRAME + 1))), "too_large", 7),
    ("oversized_message", json.dumps({**good(8), "pad": "x" * MAX_MESSAGE_BYTES}), "too_large", None),
    (
        "oversized_in_utf8",
        json.dumps({**good(8), "pad": "é" * (MAX_MESSAGE_BYTES // 2)}, ensure_ascii=False),
        "too_large",
        None,
    ),
    ("binary_message", b"\x00\x01", "bad_frame", None),
]


@pytest.mark.parametrize("name,message,code,seq", BAD_MESSAGES, ids=[m[0] for m in BAD_MESSAGES])
def test_bad_message_is_rejected_with_its_code(
    name: str, message: str | bytes, code: str, seq: int | None
) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_message(message)
    assert (info.value.code, info.value.seq) == (code, seq), info.value.detail
    assert info.value.detail


def test_good_frame_parses_to_float64_samples_unchanged() -> None:
    rows = make_samples(7, t0=12.5, seed=3)
    parsed = parse_message(json.dumps(frame(41, rows)))
    assert isinstance(parsed, Frame) and parsed.seq == 41
    assert parsed.samples.dtype == np.float64 and parsed.samples.shape == (7, 18)
    assert parsed.samples.tolist() == rows


def test_equal_timestamps_and_integers_are_accepted() -> None:
    rows = make_samples(3)
    for row in rows:
        row[0] = 100  # integer, and equal within the frame (non-decreasing is enough)
    parsed = parse_message(json.dumps(frame(0, rows)))
    assert isinstance(parsed, Frame) and (parsed.samples[:, 0] == 100.0).all()


def test_largest_frame_is_accepted() -> None:
    rows = make_samples(MAX_SAMPLES_PER_FRAME)
    text = json.dumps(frame(0, rows))
    assert len(text) < MAX_MESSAGE_BYTES
    parsed = parse_message(text)
    assert isinstance(parsed, Frame) and parsed.samples.shape == (MAX_SAMPLES_PER_FRAME, 18)


def test_hello_parses() -> None:
    assert parse_message('{"type": "hello", "session_id": 12}') == Hello(session_id=12)
    assert parse_message('{"type": "hello", "session_id": 12, "acks": "batch"}') == Hello(12, "batch")
    with pytest.raises(ProtocolError, match="acks must be one of each, batch"):
        parse_message('{"type": "hello", "session_id": 12, "acks": true}')
