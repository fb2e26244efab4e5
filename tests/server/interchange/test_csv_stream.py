"""Block-wise column reading agrees with the csv module on every layout, line numbers included."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from server.interchange import csv_stream, numpy_block
from server.interchange.csv_stream import Number, read_columns, read_header
from server.interchange.records import RowError

ROWS = [
    ["1", "a", "0.5", "x"],
    ["2", "a", "1e-3", "y"],
    ["3", "b", "", "multi\nline, quoted"],
    [],
    ["4", "b", "7", "z"],
    ["5", "c", "8"],
    ["6", "c", "9", "w"],
]


def write(path: Path, rows: list[list[str]], newline: str, bom: bool) -> Path:
    with path.open("w", newline="", encoding="utf-8-sig" if bom else "utf-8") as handle:
        writer = csv.writer(handle, lineterminator=newline)
        writer.writerow(["n", "key", "value", "note"])
        writer.writerows(rows)
    return path


@pytest.mark.parametrize("newline", ["\r\n", "\n"])
@pytest.mark.parametrize("bom", [False, True])
@pytest.mark.parametrize("chunk", [7, 16, 1 << 20])
def test_same_values_and_lines_as_the_csv_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, newline: str, bom: bool, chunk: int
) -> None:
    monkeypatch.setattr(csv_stream, "CHUNK_BYTES", chunk)
    path = write(tmp_path / "f.csv", ROWS, newline, bom)
    errors: list[RowError] = []
    header = read_header(path, errors)
    assert header == ["n", "key", "value", "note"]
    cols = read_columns(
        path, header, numbers=[Number("n"), Number("value", allow_empty=True)], keys=["key"], errors=errors
    )
    assert errors == []
    # Header = line 1; the quoted cell spans lines 4-5, the blank line 6 is skipped.
    assert cols.lines.tolist() == [2, 3, 4, 7, 8, 9]
    np.testing.assert_array_equal(cols.numbers["n"], [1, 2, 3, 4, 5, 6])
    np.testing.assert_array_equal(cols.numbers["value"], [0.5, 1e-3, np.nan, 7, 8, 9])
    assert [cols.keys["key"][c] for c in cols.codes["key"]] == ["a", "a", "b", "b", "c", "c"]


@pytest.mark.parametrize("chunk", [9, 1 << 20])
def test_bad_cells_are_reported_by_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int) -> None:
    monkeypatch.setattr(csv_stream, "CHUNK_BYTES", chunk)
    rows = [
        ["1", "k", "2", ""],
        ["2", "k", "oops", ""],
        ["3", "k", "-4", ""],
        ["4", "k", "inf", ""],
        ["5", "k", "1", "", "9"],
    ]
    path = write(tmp_path / "f.csv", rows, "\r\n", False)
    errors: list[RowError] = []
    header = read_header(path, errors)
    assert header is not None
    read_columns(path, header, numbers=[Number("value", minimum=0)], errors=errors)
    found = sorted((e.line, e.message) for e in errors)
    assert found == [
        (3, "column value: 'oops' is not a number"),
        (4, "column value: -4 is below 0"),
        (5, "column value: 'inf' is not a finite number"),
        (6, "5 cells but the header has 4 columns"),
    ]


def test_decimal_fast_path_equals_a_correct_parse() -> None:
    rng = np.random.default_rng(7)
    texts = [f"{v:.{d}f}" for v, d in zip(rng.normal(0, 1e4, 5000), rng.integers(0, 9, 5000), strict=True)]
    texts += ["0", "-0.5", "7.", ".25", "123456789012345", "0.00000000000001"]
    width = max(len(t) for t in texts)
    chars = np.zeros((len(texts), width), dtype=np.uint8)
    for i, t in enumerate(texts):
        chars[i, : len(t)] = np.frombuffer(t.encode(), dtype=np.uint8)
    values = numpy_block.decimals(chars)
    assert values is not None
    assert values.tolist() == [float(t) for t in texts]  # bit for bit
    for odd in ("1e-3", "1-2", "1.2.3", "-", " 1", "1234567890123456"):
        one = np.frombuffer(odd.encode(), dtype=np.uint8).reshape(1, -1).copy()
        assert numpy_block.decimals(one) is None, odd


def test_fixed_decimals_equal_a_correct_parse() -> None:
    """The matrix-product parser gives exactly float(text), or declines (None)."""
    rng = np.random.default_rng(3)
    width = 17
    for places in range(0, 7):
        cells = []
        for _ in range(300):
            whole = int(rng.integers(0, 10 ** int(rng.integers(1, 8))))
            text = str(whole) if places == 0 else f"{whole}.{int(rng.integers(0, 10**places)):0{places}d}"
            cells.append("-" + text if rng.random() < 0.3 else text)
        chars = rng.integers(0, 256, (len(cells), width)).astype(np.uint8)  # bytes left of a cell
        for i, text in enumerate(cells):
            chars[i, width - len(text) :] = np.frombuffer(text.encode(), dtype=np.uint8)
        lengths = np.array([len(t) for t in cells])
        values = numpy_block.fixed_decimals(chars, lengths)
        assert values is not None
        expected = np.array([float(t) for t in cells])
        assert np.array_equal(values, expected) and np.array_equal(np.signbit(values), np.signbit(expected))
    for cells in (["1.5", "1.25"], ["1-2"], ["1.2.3"], ["-"], ["1e5"], ["1234567890123456"], [" 1"]):
        chars = np.zeros((len(cells), width), dtype=np.uint8)
        for i, text in enumerate(cells):
            chars[i, width - len(text) :] = np.frombuffer(text.encode(), dtype=np.uint8)
        assert numpy_block.fixed_decimals(chars, np.array([len(t) for t in cells])) is None, cells


def test_bytes_that_are_not_utf8_stop_the_read_at_their_block(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Blocks of ~1 kB: the rows before the bad one are kept in file order, none after it. (The
    # bad byte lies beyond the first 8 kB, which the header reader decodes.)
    monkeypatch.setattr(csv_stream, "CHUNK_BYTES", 1000)
    n = 1000
    good = "".join(f"{i},k{i % 3},{i / 4},x\r\n" for i in range(1, n + 1))
    bad = 'a,"\xff",1,x\r\n'.encode("latin-1")
    path = tmp_path / "f.csv"
    path.write_bytes(b"n,key,value,note\r\n" + good.encode() + bad + good.encode())
    errors: list[RowError] = []
    header = read_header(path, errors)
    assert header is not None
    cols = read_columns(path, header, numbers=[Number("value")], keys=["key"], errors=errors)
    assert len(errors) == 1 and "not readable as UTF-8 text" in errors[0].message
    assert errors[0].line is not None and errors[0].line <= n + 2
    kept = len(cols)
    assert 0 < kept <= n and cols.lines.tolist() == list(range(2, 2 + kept))
    np.testing.assert_array_equal(cols.numbers["value"], [i / 4 for i in range(1, kept + 1)])
    assert [cols.keys["key"][c] for c in cols.codes["key"]] == [f"k{i % 3}" for i in range(1, kept + 1)]
