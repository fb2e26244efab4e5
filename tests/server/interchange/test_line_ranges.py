"""Byte ranges read by separate threads cover every line of a file exactly once, in order."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from server.interchange import csv_stream, line_ranges
from server.interchange.csv_stream import Number, read_columns, read_header
from server.interchange.records import RowError


@pytest.mark.parametrize("step", [1, 5, 64, 1000])
@pytest.mark.parametrize("last_newline", [True, False])
def test_ranges_cover_each_line_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: int, last_newline: bool
) -> None:
    monkeypatch.setattr(line_ranges, "_PROBE", 3)  # lines longer than a probe need several reads
    rng = np.random.default_rng(step)
    lines = [b"x" * int(n) for n in rng.integers(0, 40, 200)]
    header = b"a,b\n"
    body = b"\n".join(lines) + (b"\n" if last_newline else b"")
    path = tmp_path / "f.csv"
    path.write_bytes(header + body)
    size = path.stat().st_size
    fd = os.open(path, os.O_RDONLY)
    try:
        blocks = [
            line_ranges.read_lines(fd, a, a + step, len(header), size) for a in range(len(header), size, step)
        ]
    finally:
        os.close(fd)
    assert all(b == b"" or b.endswith(b"\n") for b in blocks)
    assert b"".join(blocks) == b"\n".join(lines) + b"\n"


def test_a_bad_cell_in_a_late_block_is_reported_with_its_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No quotes anywhere, so blocks are read by range; the bad one goes to the general parser.
    monkeypatch.setattr(csv_stream, "CHUNK_BYTES", 1000)
    good = "".join(f"{i},k{i % 3},{i / 4},x\r\n" for i in range(1, 1001)).encode()
    path = tmp_path / "f.csv"
    path.write_bytes(b"n,key,value,note\r\n" + good + b"7,k1,oops,x\r\n" + good)
    errors: list[RowError] = []
    header = read_header(path, errors)
    assert header is not None
    cols = read_columns(path, header, numbers=[Number("value")], keys=["key"], errors=errors)
    assert [(e.line, e.message) for e in errors] == [(1002, "column value: 'oops' is not a number")]
    assert cols.lines.tolist() == list(range(2, 2003))
    values = [i / 4 for i in range(1, 1001)]
    np.testing.assert_array_equal(cols.numbers["value"], [*values, np.nan, *values])
    assert [cols.keys["key"][c] for c in cols.codes["key"]][1000:1002] == ["k1", "k1"]


def test_a_quote_in_a_late_block_rereads_the_file_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(csv_stream, "CHUNK_BYTES", 500)
    rows = [f"{i},k{i // 50},{i / 8},plain" for i in range(1, 400)]
    rows[300] = '301,k6,37.625,"two\r\nlines, quoted"'
    path = tmp_path / "f.csv"
    path.write_bytes(("n,key,value,note\r\n" + "\r\n".join(rows) + "\r\n").encode())
    errors: list[RowError] = []
    header = read_header(path, errors)
    assert header is not None
    cols = read_columns(path, header, numbers=[Number("n"), Number("value")], keys=["key"], errors=errors)
    assert errors == []
    np.testing.assert_array_equal(cols.numbers["n"], np.arange(1, 400))
    np.testing.assert_array_equal(cols.numbers["value"], np.arange(1, 400) / 8)
    # The quoted cell spans lines 303-304, so every later row sits one line further down.
    assert cols.lines.tolist() == list(range(2, 303)) + list(range(304, 402))
    assert [cols.keys["key"][c] for c in cols.codes["key"]] == [f"k{i // 50}" for i in range(1, 400)]
