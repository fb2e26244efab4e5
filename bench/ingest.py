"""``mcgip bench ingest``: lossless gaze ingest under many simultaneous readers.

A real server (uvicorn subprocess on a free loopback port, SQLite in a temporary data directory)
receives N simulated readers over real WebSocket connections, each streaming R Hz in frames of
F ms (``bench/ingest_load.py``). Four phases, all driven by the same client in this run:

1. echo, paced: the same load against a bare WebSocket echo endpoint (reference transport cost);
2. durable, paced: ``/ws/gaze`` at the target load -> accepted samples/s, ack latency p50/p99;
3. echo, saturating: every connection keeps a window of frames in flight -> echo capacity;
4. durable, saturating: the same against ``/ws/gaze`` -> durable capacity and its ratio to echo.

Afterwards the server is stopped and the database is reconciled against what the client sent:
every frame must be stored exactly once with identical bytes and counters must agree; samples
lost must be 0. The echo endpoint exists only in this module's app factory and only when
``MCGIP_BENCH_ECHO=1``; normal serving never has it.

Targets (2-core machine, SQLite): 200 readers x 120 Hz, p99 ack <= 100 ms, 0 lost, durable >= 50%
of the echo frame rate.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
from fastapi import FastAPI, WebSocket, WebSocketDisconnect

from bench.ingest_load import LoadResult, LoadSpec, Reader, block_index, run_load
from server.settings import Settings

ECHO_PATH = "/ws/bench-echo"
ECHO_ENV = "MCGIP_BENCH_ECHO"
#: The gaze sockets' counters as JSON (bench app only, like the echo endpoint).
COUNTERS_PATH = "/bench/socket-stats"
REPO_ROOT = Path(__file__).resolve().parent.parent


def bench_app(settings: Settings | None = None) -> FastAPI:
    """The normal application, plus the echo endpoint when ``MCGIP_BENCH_ECHO=1`` (uvicorn factory)."""
    from server.app import create_app

    app = create_app(settings)
    if os.environ.get(ECHO_ENV) == "1":
        app.add_api_websocket_route(ECHO_PATH, _echo)

        def socket_stats() -> dict[str, int]:
            from dataclasses import asdict

            from server.reading.ws import stats_for

            return asdict(stats_for(app))

        app.add_api_route(COUNTERS_PATH, socket_stats, methods=["GET"], include_in_schema=False)
    return app


async def _echo(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            await websocket.send_text(await websocket.receive_text())
    except WebSocketDisconnect:
        pass


# ---- set-up -----------------------------------------------------------------------------------------


def sample_blocks(samples_per_frame: int, n_blocks: int = 64) -> tuple[list[str], list[np.ndarray]]:
    """Frames of simulated 120 Hz reading, as protocol samples (JSON text and float64 arrays)."""
    import json

    from server.demo.gaze import Viewport, protocol_samples
    from trainer.synthetic.images import generate_dataset
    from trainer.synthetic.readers import DEMO_READERS, simulate_session

    profile = max(DEMO_READERS, key=lambda p: p.sample_rate_hz)
    arrays: list[np.ndarray] = []
    for i, case in enumerate(generate_dataset(4, seed=7, size=256)):
        sim = simulate_session(case, profile, seed=i)
        rows = protocol_samples(sim.samples, Viewport(256, 256, 2048.0, 4096.0))
        for start in range(0, rows.shape[0] - samples_per_frame + 1, samples_per_frame):
            arrays.append(rows[start : start + samples_per_frame])
    arrays = arrays[:n_blocks]
    return [json.dumps(a.tolist()) for a in arrays], arrays


@dataclass(frozen=True)
class World:
    url: str
    secret: str
    durable: list[Reader]  # paced phase
    saturate: list[Reader]  # saturating phase


def prepare(data_dir: Path, n_readers: int) -> World:
    """Schema, a case, ``n_readers`` reader accounts with two open sessions each, and their tokens."""
    from server.auth.tokens import TokenCodec
    from server.db import Database
    from server.migrate import upgrade
    from server.models import Assignment, Case, Dataset, ReadingSession, Role, User

    url = f"sqlite:///{data_dir / 'bench.db'}"
    upgrade(url)
    secret = secrets.token_urlsafe(32)
    codec = TokenCodec(secret, 3600)
    db = Database(url)
    durable: list[Reader] = []
    saturate: list[Reader] = []
    with db.session() as session:
        dataset = Dataset(name="bench", label_set=["a", "b"])
        session.add(dataset)
        session.flush()
        case = Case(dataset_id=dataset.id, external_id="bench", title="bench")
        session.add(case)
        session.flush()
        for i in range(n_readers):
            # Unusable password hash: these accounts only ever use tokens.
            user = User(username=f"bench-reader-{i}", password_hash="!", role=Role.reader)
            session.add(user)
            session.flush()
            session.add(Assignment(case_id=case.id, reader_id=user.id))
            token = codec.issue(user.id, 0, frozenset({"read", "write"}))
            for target in (durable, saturate):
                reading = ReadingSession(case_id=case.id, reader_id=user.id, source="replay")
                session.add(reading)
                session.flush()
                target.append(Reader(session_id=reading.id, token=token))
    db.dispose()
    return World(url=url, secret=secret, durable=durable, saturate=saturate)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(
    data_dir: Path, world: World, port: int, extra_env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """The bench app in a uvicorn subprocess; ``extra_env`` reaches only that process (a bench run
    in-process, as the tests do, must not change the caller's environment)."""
    env = {
        **os.environ,
        **(extra_env or {}),
        "MCGIP_DATA_DIR": str(data_dir),
        "MCGIP_DATABASE_URL": world.url,
        "MCGIP_SECRET_KEY": world.secret,
        "MCGIP_LOG_LEVEL": "WARNING",
        ECHO_ENV: "1",
    }
    command = [sys.executable, "-m", "uvicorn", "bench.ingest:bench_app", "--factory", "--host", "127.0.0.1"]
    command += [
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
        "--ws-max-size",
        str(4 << 20),
    ]
    server = subprocess.Popen(command, cwd=REPO_ROOT, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"server exited with {server.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    server.kill()
    raise RuntimeError("server did not become healthy within 60 s")


def stop_server(server: subprocess.Popen[bytes]) -> None:
    """SIGTERM, so the lifespan drains the gaze writer as in a real shutdown."""
    server.terminate()
    try:
        server.wait(timeout=60)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


# ---- reconciliation ------------------------------------------------------------------------------


@dataclass
class Reconciliation:
    frames_sent: int = 0
    frames_stored: int = 0
    samples_sent: int = 0
    samples_lost: int = 0
    acked_but_missing: int = 0
    corrupted: int = 0
    counter_mismatches: int = 0
    unexpected_rows: int = 0


def reconcile(
    url: str, readers: Sequence[Reader], result: LoadResult, arrays: list[np.ndarray]
) -> Reconciliation:
    """Compare the database with every frame the client sent in one durable phase."""
    from sqlalchemy import select

    from server.db import Database
    from server.models import GazeChunk, ReadingSession
    from server.reading.samples import encode

    encoded = [encode(a) for a in arrays]
    out = Reconciliation()
    db = Database(url)
    with db.session() as session:
        for index, (reader, log) in enumerate(zip(readers, result.logs, strict=True)):
            rows = {
                int(seq): (n, data)
                for seq, n, data in session.execute(
                    select(GazeChunk.seq, GazeChunk.n_samples, GazeChunk.data).where(
                        GazeChunk.session_id == reader.session_id
                    )
                )
            }
            out.frames_sent += len(log.sent)
            out.frames_stored += len(rows)
            out.unexpected_rows += len(set(rows) - set(log.sent))
            for seq, block in log.sent.items():
                assert block == block_index(index, seq, len(arrays))
                n = arrays[block].shape[0]
                out.samples_sent += n
                if seq not in rows:
                    out.samples_lost += n
                    out.acked_but_missing += seq in log.acked
                elif rows[seq][1] != encoded[block]:
                    out.corrupted += 1
            counters = session.get(ReadingSession, reader.session_id)
            assert counters is not None
            stored_samples = sum(n for n, _ in rows.values())
            if (counters.sample_count, counters.chunk_count) != (stored_samples, len(rows)):
                out.counter_mismatches += 1
    db.dispose()
    return out


# ---- report --------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile of ``values`` (NaN when there are none)."""
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def summarise(name: str, result: LoadResult, samples_per_frame: int) -> dict[str, float]:
    latencies = [x for log in result.logs for x in log.latencies_s]
    errors = sum(len(log.errors) for log in result.logs)
    frames = result.frames_acked
    row = {
        "frames_sent": result.frames_sent,
        "frames_acked": frames,
        "frames_per_s": frames / result.active_s,
        "samples_per_s": frames * samples_per_frame / result.active_s,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "max_ms": max(latencies, default=float("nan")) * 1000,
        "errors": errors,
    }
    print(
        f"  {name:<20} {row['frames_per_s']:>9.0f} frames/s {row['samples_per_s']:>10.0f} samples/s"
        f"  ack p50 {row['p50_ms']:7.1f} ms  p99 {row['p99_ms']:7.1f} ms  max {row['max_ms']:7.1f} ms"
        f"  acked {frames}/{result.frames_sent}  errors {errors}"
    )
    for log in result.logs:
        for message in log.errors[:1]:
            print(f"    e.g. {message}")
            break
    return row


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mcgip bench ingest", description=__doc__.split("\n\n")[0])
    parser.add_argument("--readers", type=int, default=200, help="simultaneous readers (connections)")
    parser.add_argument("--rate", type=float, default=120.0, help="samples per second per reader")
    parser.add_argument("--frame-ms", type=float, default=100.0, help="frame period per reader, ms")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds of paced streaming per phase")
    parser.add_argument("--saturate", type=float, default=8.0, help="seconds of saturating load per phase")
    parser.add_argument(
        "--window", type=int, default=8, help="frames in flight per connection when saturating"
    )
    parser.add_argument(
        "--acks",
        choices=("batch", "each"),
        default="batch",
        help="acknowledgement mode the readers ask for in their hello (docs/gaze-protocol.md)",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 8 readers, about 2 s per phase")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data directory")
    args = parser.parse_args(argv)
    if args.quick:
        args.readers, args.duration, args.saturate = min(args.readers, 8), 1.5, 1.0
    per_frame = max(1, round(args.rate * args.frame_ms / 1000.0))
    blocks, arrays = sample_blocks(per_frame)
    data_dir = Path(tempfile.mkdtemp(prefix="mcgip-bench-ingest-"))
    world = prepare(data_dir, args.readers)
    port = free_port()
    server = start_server(data_dir, world, port)
    base = f"ws://127.0.0.1:{port}"
    print(
        f"ingest: {args.readers} readers x {args.rate:g} Hz, frames of {args.frame_ms:g} ms"
        f" ({per_frame} samples), acks {args.acks}, SQLite, uvicorn pid {server.pid}, {os.cpu_count()} CPUs"
    )
    try:
        gaze, echo = base + "/ws/gaze", base + ECHO_PATH
        ms, paced_s, sat_s, window = args.frame_ms, args.duration, args.saturate, args.window
        batch = args.acks == "batch"
        phases = [
            ("echo paced", LoadSpec(echo, world.durable, blocks, ms, paced_s)),
            (
                "durable paced",
                LoadSpec(gaze, world.durable, blocks, ms, paced_s, resume=True, batch_acks=batch),
            ),
            ("echo saturating", LoadSpec(echo, world.saturate, blocks, ms, sat_s, window)),
            (
                "durable saturating",
                LoadSpec(gaze, world.saturate, blocks, ms, sat_s, window, resume=True, batch_acks=batch),
            ),
        ]
        results: dict[str, LoadResult] = {}
        rows: dict[str, dict[str, float]] = {}
        for name, spec in phases:
            results[name] = asyncio.run(run_load(spec))
            rows[name] = summarise(name, results[name], per_frame)
    finally:
        stop_server(server)
    checks = {
        name: reconcile(world.url, readers, results[name], arrays)
        for name, readers in (("durable paced", world.durable), ("durable saturating", world.saturate))
    }
    for name, rec in checks.items():
        print(
            f"  reconciled {name}: {rec.frames_stored}/{rec.frames_sent} frames stored, samples lost"
            f" {rec.samples_lost} of {rec.samples_sent} (acked but missing {rec.acked_but_missing}),"
            f" corrupted {rec.corrupted}, counter mismatches {rec.counter_mismatches},"
            f" unexpected {rec.unexpected_rows}"
        )
    paced, sat = rows["durable paced"], rows["durable saturating"]
    offered = args.readers * per_frame * 1000.0 / args.frame_ms
    ratio_paced = paced["frames_per_s"] / rows["echo paced"]["frames_per_s"]
    ratio_sat = sat["frames_per_s"] / rows["echo saturating"]["frames_per_s"]
    lost = sum(
        r.samples_lost + r.corrupted + r.counter_mismatches + r.unexpected_rows for r in checks.values()
    )
    resent = sum(log.resent for name in checks for log in results[name].logs)
    print(f"  offered {offered:.0f} samples/s; accepted {paced['samples_per_s']:.0f} samples/s")
    print(f"  durable/echo frame rate: paced {ratio_paced:.2f}, saturating {ratio_sat:.2f} (target >= 0.50)")
    print(f"  p99 ack {paced['p99_ms']:.1f} ms (target <= 100 ms); samples lost {lost} (must be 0)")
    print(f"  frames resent after a reconnect (client drain timeout): {resent}")
    if not args.keep:
        import shutil

        shutil.rmtree(data_dir, ignore_errors=True)
    else:
        print(f"  data kept in {data_dir}")
    return 0 if lost == 0 and paced["errors"] == 0 and sat["errors"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
