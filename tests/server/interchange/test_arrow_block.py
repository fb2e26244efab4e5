"""Arrow's fast path reads clean blocks exactly like the general parser and declines anything else."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from server.interchange import arrow_block, csv_stream
from server.interchange.arrow_block import NumberSpec, parse_clean_block
from server.interchange.csv_stream import Columns, Number, read_columns, read_header
from server.interchange.records import RowError

HEADER = ["session", "t", "x", "dicom", "valid", "note"]
NUMBERS = [Number("t", minimum=0), Number("x", allow_empty=True), Number("valid")]
KEYS = ["session", "dicom"]


def write_clean(path: Path, rows: int, newline: str, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    lines = [",".join(HEADER)]
    for i in range(rows):
        x = rng.normal(0, 500)
        x_text = "" if rng.random() < 0.05 else rng.choice([f"{x:.5f}", f"{x:.2e}", f"{x:.0f}", repr(x)])
        # Keys in runs, some with spaces the parser strips.
        dicom = f" img-{i // 97}" if (i // 97) % 3 == 0 else f"img-{i // 97}"
        lines.append(f"{1 + i // 400},{i / 60:.5f},{x_text},{dicom},{int(rng.random() > 0.1)},n{i % 7}")
    path.write_bytes((newline.join(lines) + newline).encode())
    return path


def read(path: Path) -> tuple[Columns, list[RowError]]:
    errors: list[RowError] = []
    header = read_header(path, errors)
    assert header is not None
    return read_columns(path, header, numbers=NUMBERS, keys=KEYS, errors=errors), errors


@pytest.mark.parametrize("newline", ["\r\n", "\n"])
@pytest.mark.parametrize("chunk", [997, 1 << 20])
def test_clean_blocks_read_by_arrow_equal_the_general_parser(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, newline: str, chunk: int
) -> None:
    monkeypatch.setattr(csv_stream, "CHUNK_BYTES", chunk)
    path = write_clean(tmp_path / "f.csv", 3000, newline, seed=len(newline) + chunk)
    used: list[bool] = []

    def counting(*args: object, **kwargs: object) -> arrow_block.ArrowBlock | None:
        result = parse_clean_block(*args, **kwargs)  # type: ignore[arg-type]
        used.append(result is not None)
        return result

    monkeypatch.setattr(csv_stream, "parse_clean_block", counting)
    fast, fast_errors = read(path)
    assert used and all(used), "every clean block should take the Arrow path"
    monkeypatch.setattr(csv_stream, "parse_clean_block", lambda *a, **k: None)
    general, general_errors = read(path)
    assert fast_errors == general_errors == []
    assert fast.lines.tolist() == general.lines.tolist() == list(range(2, 3002))
    for name in ("t", "x", "valid"):
        # Bit for bit, NaN (empty x) in the same places.
        assert fast.numbers[name].tobytes() == general.numbers[name].tobytes(), name
    for key in KEYS:
        named = [fast.keys[key][c] for c in fast.codes[key]]
        assert named == [general.keys[key][c] for c in general.codes[key]]
    assert fast.keys["dicom"][:2] == ["img-0", "img-1"]


CLEAN = b"1,0.5,2.5,a,1,n\r\n1,0.6,,a,1,n\r\n"


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (CLEAN + b"\r\n", "blank line"),
        (CLEAN + b"1,0.7,2,a,1,n\rx\r\n", "lone carriage return"),
        (CLEAN + b"1,0.7,2,a,1\r\n", "short row"),
        (CLEAN + b"1,0.7,2,a,1,n,extra\r\n", "long row"),
        (CLEAN + b"1,0.7,NA,a,1,n\r\n", "NA is not a number"),
        (CLEAN + b"1,0.7,nan,a,1,n\r\n", "nan is not finite"),
        (CLEAN + b"1,0.7,inf,a,1,n\r\n", "inf is not finite"),
        (CLEAN + b"1,-0.7,2,a,1,n\r\n", "below the minimum"),
        (CLEAN + b"1,,2,a,1,n\r\n", "empty where a number is required"),
        (CLEAN + b"1,0.7,2,\xff,1,n\r\n", "not UTF-8"),
    ],
)
def test_blocks_needing_a_closer_look_are_declined(data: bytes, why: str) -> None:
    specs = [NumberSpec(1, False, 0.0), NumberSpec(2, True, None), NumberSpec(4, False, None)]
    assert parse_clean_block(CLEAN, 6, specs, [0, 3]) is not None
    assert parse_clean_block(data, 6, specs, [0, 3]) is None, why


def test_declined_blocks_are_still_reported_by_line(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(b"session,t,x,dicom,valid,note\r\n" + CLEAN + b"1,0.7,NA,a,1,n\r\n1,-1,2,a,1,n\r\n")
    cols, errors = read(path)
    assert sorted((e.line, e.message) for e in errors) == [
        (4, "column x: 'NA' is not a number"),
        (5, "column t: -1 is below 0"),
    ]
    assert cols.lines.tolist() == [2, 3, 4, 5]


def test_reading_columns_does_not_import_pandas(tmp_path: Path) -> None:
    # Arrow's to_numpy() would import pandas (a test-only package, and slow to import).
    path = write_clean(tmp_path / "f.csv", 200, "\r\n", seed=1)
    code = (
        "import sys; from pathlib import Path; from tests.server.interchange.test_arrow_block import read; "
        f"cols, errors = read(Path({str(path)!r})); assert len(cols) == 200 and not errors; "
        "assert 'pyarrow' in sys.modules and 'pandas' not in sys.modules, sorted(sys.modules)"
    )
    root = Path(__file__).resolve().parents[3]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root, timeout=60)
