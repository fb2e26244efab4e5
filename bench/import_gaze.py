"""``mcgip bench import``: importing a full-size EGD-CXR ``eye_gaze.csv`` with bounded memory.

A simulated ``eye_gaze.csv`` in the published layout (37 columns, CRLF, ~1.5 M rows like the real
file: 1,083 images, ~1,400 samples each at 60 Hz) and its ``master_sheet.csv`` are written to a
temporary folder, with a SQLite database holding the matching cases. Two child processes run in
turn so their peak memory (``ru_maxrss``) is their own:

1. reference: ``pandas.read_csv`` of the same file (parse only, all columns);
2. McGIP: ``import_gaze`` of the folder's raw gaze into reading sessions, committed.

Printed: rows/s of each (wall clock) and their ratio (target >= 0.5x), the import's peak memory
(target <= 500 MB at 1.5 M rows), and to show where the time goes: each child's CPU seconds
(user + system) and how long the import's commit took (SQLite's WAL checkpoint, disk-bound).
Each child imports its libraries before its clock starts; the import child also opens its first
database connection and configures the ORM mappers then (once-per-process set-up, like pandas'
import). ``--quick`` uses 150,000 rows (the smoke run of the tests).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

EGD_COLUMNS = [
    "SESSION_ID", "MEDIA_ID", "DICOM_ID", "CNT", "Time (in secs)", "TIMETICK(f=10000000)",
    "FPOGX", "FPOGY", "FPOGS", "FPOGD", "FPOGID", "FPOGV", "BPOGX", "BPOGY", "BPOGV",
    "LPCX", "LPCY", "LPD", "LPS", "LPV", "RPCX", "RPCY", "RPD", "RPS", "RPV",
    "BKID", "BKDUR", "BKPMIN", "LPMM", "LPMMV", "RPMM", "RPMMV", "SACCADE_MAG", "SACCADE_DIR",
    "VID_FRAME", "X_ORIGINAL", "Y_ORIGINAL",
]  # fmt: skip
SHEET_COLUMNS = [
    "dicom_id",
    "image_top_pad",
    "image_bottom_pad",
    "image_left_pad",
    "image_right_pad",
    "Normal",
]
IMAGE_SIZE = (2544, 3056)
ROWS_PER_IMAGE = 1_385  # 1.5 M rows / 1,083 images
MB = 1024 * 1024


def image_ids(rows: int) -> list[str]:
    return [f"sim-{i:05d}" for i in range(max(1, -(-rows // ROWS_PER_IMAGE)))]


def write_egd(folder: Path, rows: int, seed: int = 0) -> list[str]:
    """Write ``eye_gaze.csv`` (``rows`` rows) and ``master_sheet.csv``; returns the image ids."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    ids = image_ids(rows)
    with (folder / "master_sheet.csv").open("w", newline="") as sheet:
        sheet.write(",".join(SHEET_COLUMNS) + "\r\n")
        sheet.writelines(f"{d},0,0,447,447,1\r\n" for d in ids)
    with (folder / "eye_gaze.csv").open("w", newline="") as out:
        out.write(",".join(EGD_COLUMNS) + "\r\n")
        done = 0
        for k, dicom in enumerate(ids):
            n = min(ROWS_PER_IMAGE, rows - done)
            if n <= 0:
                break
            t = np.arange(1, n + 1) / 60.0
            fx, fy = rng.uniform(0.2, 0.8, n), rng.uniform(0.05, 0.95, n)
            valid = (rng.random(n) > 0.1).astype(int)
            session = 1 + k // 30
            lines = [
                f"{session},0,{dicom},{i + 1},{t[i]:.5f},{696216388878 + i * 166667},{fx[i]:.5f},{fy[i]:.5f},"
                f"{t[i]:.5f},0.01,{i},{valid[i]},{fx[i]:.5f},{fy[i]:.5f},1,0.37859,0.5943,18.33718,1.05276,1,"
                f"0.6379,0.59798,18.19434,1.06068,1,0,0.0,20,3.50648,1,3.56681,1,0.0,0.0,0.0,"
                f"{int(fx[i] * 2500)},{int(fy[i] * 3000)}\r\n"
                for i in range(n)
            ]
            out.writelines(lines)
            done += n
    return ids


def make_database(url: str, ids: Sequence[str]) -> None:
    """A dataset "egd" with one 12-bit 2544 x 3056 case per image id (no pixel files needed)."""
    from server import migrate
    from server.db import Database
    from server.models import Case, Dataset, StoredImage

    migrate.upgrade(url)
    db = Database(url)
    with db.session() as session:
        dataset = Dataset(name="egd", label_set=["Normal", "CHF", "pneumonia"])
        session.add(dataset)
        session.flush()
        for dicom in ids:
            case = Case(dataset_id=dataset.id, external_id=dicom, title=dicom)
            session.add(case)
            session.flush()
            session.add(
                StoredImage(
                    case_id=case.id, format="dicom", width=IMAGE_SIZE[0], height=IMAGE_SIZE[1],
                    bits_stored=12, photometric="MONOCHROME2", value_offset=0.0, value_scale=1.0,
                    window_center=2048.0, window_width=4096.0, sha256="0" * 64,
                    storage_dir=f"images/{case.id}", has_dicom=True,
                )
            )  # fmt: skip
    db.dispose()


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _pandas(path: str, out: Any) -> None:
    import pandas

    cpu, start = _cpu(), time.perf_counter()
    frame = pandas.read_csv(path)
    elapsed, cpu = time.perf_counter() - start, _cpu() - cpu
    out.put((len(frame), elapsed, cpu, 0.0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024))


def _import(folder: str, url: str, out: Any) -> None:
    from sqlalchemy.orm import configure_mappers

    from server.db import Database
    from server.interchange.service import ImportFormat, ImportOptions, import_gaze

    db = Database(url)
    configure_mappers()
    with db.engine.connect():
        pass
    cpu, start = _cpu(), time.perf_counter()
    with db.session() as session:
        report = import_gaze(
            session, ImportFormat.egd_cxr, Path(folder), dataset="egd", reader=None,
            options=ImportOptions(raw_gaze=True),
        )  # fmt: skip
        committing = time.perf_counter()
    end = time.perf_counter()
    elapsed, cpu, commit = end - start, _cpu() - cpu, end - committing
    db.dispose()
    out.put((report.samples, elapsed, cpu, commit, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024))


def _child(target: Any, *args: Any) -> tuple[int, float, float, float, int]:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    process = ctx.Process(target=target, args=(*args, queue))
    process.start()
    result = queue.get()
    process.join()
    if process.exitcode != 0:
        raise RuntimeError(f"{target.__name__} failed with exit code {process.exitcode}")
    return result  # type: ignore[no-any-return]


def run(rows: int, workdir: Path) -> dict[str, float]:
    """Write the files, run both children, return the figures."""
    folder = workdir / "egd-cxr"
    start = time.perf_counter()
    ids = write_egd(folder, rows)
    url = f"sqlite:///{workdir / 'bench.db'}"
    make_database(url, ids)
    prepared = time.perf_counter() - start
    load = os.getloadavg()[0]
    n_ref, t_ref, cpu_ref, _, rss_ref = _child(_pandas, str(folder / "eye_gaze.csv"))
    n_imp, t_imp, cpu_imp, commit, rss_imp = _child(_import, str(folder), url)
    if n_ref != rows or n_imp != rows:
        raise RuntimeError(f"row counts differ: file {rows}, pandas {n_ref}, imported {n_imp}")
    return {
        "rows": rows,
        "images": len(ids),
        "file_mb": (folder / "eye_gaze.csv").stat().st_size / MB,
        "prepare_s": prepared,
        "pandas_rows_per_s": rows / t_ref,
        "pandas_peak_mb": rss_ref / MB,
        "import_rows_per_s": rows / t_imp,
        "import_peak_mb": rss_imp / MB,
        "ratio": t_ref / t_imp,
        "pandas_cpu_s": cpu_ref,
        "import_cpu_s": cpu_imp,
        "cpu_ratio": cpu_ref / cpu_imp,
        "import_commit_s": commit,
        "import_s": t_imp,
        "pandas_s": t_ref,
        "load_before": load,
        "load_after": os.getloadavg()[0],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mcgip bench import", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_500_000, help="rows of eye_gaze.csv (default 1.5 M)")
    parser.add_argument("--quick", action="store_true", help="150,000 rows")
    args = parser.parse_args(argv)
    rows = 150_000 if args.quick else args.rows
    with tempfile.TemporaryDirectory(prefix="mcgip-bench-import-") as tmp:
        r = run(rows, Path(tmp))
    print(f"eye_gaze.csv: {r['rows']:,.0f} rows, {r['images']:,.0f} images, {r['file_mb']:.0f} MB (CRLF)")
    print(f"load average (1 min) before / after: {r['load_before']:.1f} / {r['load_after']:.1f}")
    print(
        f"reference pandas.read_csv: {r['pandas_rows_per_s']:,.0f} rows/s ({r['pandas_s']:.2f} s, "
        f"CPU {r['pandas_cpu_s']:.2f} s), peak {r['pandas_peak_mb']:.0f} MB"
    )
    rate, peak = r["import_rows_per_s"], r["import_peak_mb"]
    print(
        f"mcgip import (parse + store + commit): {rate:,.0f} rows/s ({r['import_s']:.2f} s, of them "
        f"{r['import_commit_s']:.2f} s in the commit; CPU {r['import_cpu_s']:.2f} s), peak {peak:.0f} MB"
    )
    print(f"ratio import/pandas: {r['ratio']:.2f}x (target >= 0.5x)")
    print(f"CPU-time ratio import/pandas: {r['cpu_ratio']:.2f}x (not a target: shows the disk waits)")
    limit = 500 * r["rows"] / 1_500_000 if r["rows"] >= 1_500_000 else 500
    print(f"peak memory: {r['import_peak_mb']:.0f} MB (target <= {limit:.0f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
