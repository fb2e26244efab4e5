"""``mcgip bench loop``: how fast the embedded set-up closes the loop from reading to training.

A fresh temporary data directory gets the schema (``mcgip db upgrade``) and a small demo
(``mcgip demo seed``); then ``mcgip serve --with-worker`` runs on a free loopback port with SQLite,
exactly as ``make run`` does. Against it, over HTTP and the real WebSocket:

1. **Pair-statistics latency.** An admin uploads a new case and puts it on a reader's worklist; the
   reader opens a session (``POST /api/sessions``), streams simulated gaze over ``/ws/gaze`` until
   every frame is acknowledged and finishes it (``POST /api/sessions/{id}/finish``). The clock runs
   from the finish reply until ``GET /api/stats/pairs`` (the worker's pair graph) counts one more
   case with a pair; only the new case lacks pairs before. Target <= 10 s. Afterwards the database
   is checked directly for pairs of every new case.
2. **Retrain progress.** ``POST /api/jobs`` queues a retrain with a tiny config; ``GET
   /api/jobs/{id}`` is polled every 0.1 s. A progress report is a new ``heartbeat_at`` (every worker
   heartbeat writes progress, info and log tail with it); the figure is the largest gap between
   reports from the job's first running observation to its end. Target <= 2 s. In the full run a
   few reading sessions are measured again while the retrain runs (pair mining keeps its own lane).

References measured in the same run: the round trip of an empty ``pairs`` job (queue, claim, run,
mark done) for the latency, and the 2 s target and the worker's heartbeat period for the gaps.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from bench.ingest import REPO_ROOT, free_port, percentile
from bench.loop_probes import (
    ProgressTrace,
    connect,
    follow_job,
    pair_latency,
    pairs_in_database,
    queue_round_trip,
    submit_retrain,
    wait_settled,
)
from server.worker.options import WorkerOptions

#: Tiny enough to train, evaluate and export in well under a minute on two CPU cores.
TINY_CONFIG: dict[str, Any] = {
    "data": {"image_size": 32, "load_size": 40},
    "augment": {"preset": "synthetic"},
    "model": {"proj_hidden_dim": 64, "proj_dim": 32},
    "method": {"temperature": 0.5},
    "optim": {"lr": 0.05},
    "train": {"batch_size": 8, "checkpoint_every": 4, "log_every": 1, "device": "cpu"},
    "evaluation": {"knn_k": 3, "probe_epochs": 10},
}
LATENCY_TARGET_S = 10.0
PROGRESS_TARGET_S = 2.0
#: Seeds of the new cases read during the run (the demo's own cases use seed 0).
NEW_CASE_SEED = 4242


# ---- set-up ------------------------------------------------------------------------------------


def _cli(env: dict[str, str], *args: str, timeout: float = 300) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "server.cli", *args],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"mcgip {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def child_env(data_dir: Path, passwords: dict[str, str]) -> dict[str, str]:
    """A clean ``MCGIP_*`` environment for the temporary set-up (worker knobs pass through)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCGIP_") or k.startswith("MCGIP_WORKER_")}
    env.update(
        MCGIP_DATA_DIR=str(data_dir),
        MCGIP_SECRET_KEY=secrets.token_urlsafe(32),
        MCGIP_DEMO_ADMIN_PASSWORD=passwords["admin"],
        MCGIP_DEMO_READER_PASSWORD=passwords["reader"],
        MCGIP_LOG_LEVEL="WARNING",
    )
    return env


def start_embedded(env: dict[str, str], port: int, log_path: Path) -> subprocess.Popen[bytes]:
    """``mcgip serve --with-worker`` on ``127.0.0.1:port``; returns once ``/api/health`` answers."""
    command = [sys.executable, "-m", "server.cli", "serve", "--with-worker", "--host", "127.0.0.1"]
    with log_path.open("wb") as log:
        # Its own process group, so stopping reaches the worker it starts too (see stop_embedded).
        server = subprocess.Popen(
            [*command, "--port", str(port)],
            cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"server exited with {server.returncode}; see {log_path}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    stop_embedded(server)
    raise RuntimeError("server did not become healthy within 60 s")


def stop_embedded(server: subprocess.Popen[bytes], timeout_s: float = 30.0) -> None:
    """SIGTERM the server's whole process group, as Ctrl-C in a terminal would, and wait for it.

    Signalling only the ``mcgip serve`` process is not enough: uvicorn re-raises SIGTERM after its
    graceful shutdown, so the process ends before it can stop the worker it started.
    """
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    with contextlib.suppress(subprocess.TimeoutExpired):
        server.wait(timeout=timeout_s)
    while time.monotonic() < deadline:
        try:
            os.killpg(server.pid, 0)  # anyone left in the group (the worker)?
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
    if server.poll() is None:
        server.kill()
        server.wait()


# ---- report ------------------------------------------------------------------------------------


def _median(values: Sequence[float]) -> float:
    return percentile(list(values), 50)


def summarise(
    latencies: list[float],
    busy: list[float],
    round_trips: list[float],
    trace: ProgressTrace,
    options: WorkerOptions,
) -> dict[str, Any]:
    """Every figure of the run (seconds unless named otherwise), the ratios included."""
    reference = _median(round_trips)
    gaps = trace.gaps(trace.reports)
    content_gaps = trace.gaps(trace.changes)
    max_gap = max(gaps, default=float("nan"))
    ended = trace.ended_at if trace.ended_at is not None else float("nan")
    running = trace.running_at if trace.running_at is not None else float("nan")
    return {
        "latency_s": latencies,
        "latency_p50_s": percentile(latencies, 50),
        "latency_max_s": max(latencies, default=float("nan")),
        "latency_during_retrain_s": busy,
        "queue_round_trip_s": reference,
        "latency_p50_over_round_trip": percentile(latencies, 50) / reference,
        "latency_max_over_round_trip": max(latencies, default=float("nan")) / reference,
        "latency_max_over_target": max(latencies, default=float("nan")) / LATENCY_TARGET_S,
        "latency_p50_over_schedule_period": percentile(latencies, 50) / options.schedule_every_s,
        "retrain_state": trace.state,
        "retrain_error": trace.error,
        "retrain_total_s": ended - trace.submitted,
        "retrain_running_s": ended - running,
        "retrain_phase_s": trace.phase_seconds(),
        "progress_reports": len(gaps) - 1 if gaps else 0,
        "progress_max_gap_s": max_gap,
        "progress_p50_gap_s": percentile(gaps, 50),
        "progress_max_gap_over_target": max_gap / PROGRESS_TARGET_S,
        "progress_max_gap_over_heartbeat": max_gap / options.heartbeat_s,
        "content_changes": len(trace.changes),
        "content_max_gap_s": max(content_gaps, default=float("nan")),
        "worker_heartbeat_s": options.heartbeat_s,
        "worker_poll_s": options.poll_s,
        "worker_schedule_every_s": options.schedule_every_s,
    }


def print_report(figures: dict[str, Any]) -> None:
    f = figures
    lat = ", ".join(f"{x:.2f}" for x in f["latency_s"])
    print(
        f"  finished session -> pair statistics: p50 {f['latency_p50_s']:.2f} s,"
        f" max {f['latency_max_s']:.2f} s"
        f" over {len(f['latency_s'])} sessions [{lat}] (target <= {LATENCY_TARGET_S:g} s)"
    )
    if f["latency_during_retrain_s"]:
        busy = ", ".join(f"{x:.2f}" for x in f["latency_during_retrain_s"])
        print(f"    while the retrain ran: [{busy}] s")
    print(
        f"  reference: empty pairs job round trip {f['queue_round_trip_s']:.3f} s (median of 3);"
        f" worker schedule {f['worker_schedule_every_s']:g} s, poll {f['worker_poll_s']:g} s,"
        f" heartbeat {f['worker_heartbeat_s']:g} s"
    )
    print(
        f"  latency / round trip: p50 {f['latency_p50_over_round_trip']:.1f}x,"
        f" max {f['latency_max_over_round_trip']:.1f}x; p50 / schedule period"
        f" {f['latency_p50_over_schedule_period']:.2f}; max / target {f['latency_max_over_target']:.2f}"
    )
    phases = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in f["retrain_phase_s"].items())
    print(
        f"  retrain {f['retrain_state']}: {f['retrain_total_s']:.1f} s from POST to done"
        f" ({f['retrain_running_s']:.1f} s running; {phases})"
    )
    print(
        f"  progress reports: {f['progress_reports']}, gap p50 {f['progress_p50_gap_s']:.2f} s,"
        f" max {f['progress_max_gap_s']:.2f} s (target <= {PROGRESS_TARGET_S:g} s);"
        f" max gap / target {f['progress_max_gap_over_target']:.2f},"
        f" / heartbeat {f['progress_max_gap_over_heartbeat']:.2f}"
    )
    print(
        f"  progress content changed {f['content_changes']} times, longest unchanged"
        f" {f['content_max_gap_s']:.2f} s (informational: a phase may hold its figures)"
    )
    if f["retrain_error"]:
        print(f"  retrain error: {f['retrain_error']}")


def _finite(figures: dict[str, Any]) -> bool:
    numbers = [v for v in figures.values() if isinstance(v, float)]
    numbers += [x for key in ("latency_s", "latency_during_retrain_s") for x in figures[key]]
    return all(math.isfinite(x) for x in numbers)


# ---- run ---------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mcgip bench loop", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=5, help="new sessions timed on an idle worker")
    parser.add_argument("--during", type=int, default=2, help="new sessions timed while the retrain runs")
    parser.add_argument("--steps", type=int, default=20, help="optimizer steps of each training run")
    parser.add_argument("--cases", type=int, default=16, help="demo cases seeded")
    parser.add_argument("--size", type=int, default=64, help="image side of the demo and new cases")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 2 sessions, 4 steps, no baseline run, none during"
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data directory")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.quick:
        args.sessions, args.during, args.steps = min(args.sessions, 2), 0, min(args.steps, 4)
    from trainer.synthetic.images import generate_dataset

    # One request line per 0.1 s poll would drown the report.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    options = WorkerOptions()
    data_dir = Path(tempfile.mkdtemp(prefix="mcgip-bench-loop-"))
    passwords = {"admin": secrets.token_urlsafe(12), "reader": secrets.token_urlsafe(12)}
    env = child_env(data_dir, passwords)
    started = time.perf_counter()
    _cli(env, "db", "upgrade")
    _cli(env, "demo", "seed", "--cases", str(args.cases), "--size", str(args.size))
    seeded_s = time.perf_counter() - started
    port = free_port()
    log_path = data_dir / "server.log"
    server = start_embedded(env, port, log_path)
    print(
        f"loop: mcgip serve --with-worker on 127.0.0.1:{port}, SQLite, demo of {args.cases} cases"
        f" ({args.size} px) seeded in {seeded_s:.1f} s, {os.cpu_count()} CPUs"
    )
    new_cases = generate_dataset(args.sessions + args.during, seed=NEW_CASE_SEED, size=args.size)
    case_ids: list[int] = []
    try:
        world = connect(f"http://127.0.0.1:{port}", passwords)
        with httpx.Client(base_url=world.base, timeout=30) as client:
            print(f"  worker mined the demo sessions {wait_settled(client, world):.1f} s after start")
            round_trips = [queue_round_trip(client, world) for _ in range(3)]
            latencies: list[float] = []
            for i in range(args.sessions):
                case_id, seconds = pair_latency(client, world, new_cases[i], i)
                case_ids.append(case_id)
                latencies.append(seconds)
            config = json.loads(json.dumps(TINY_CONFIG))
            config["train"]["steps"] = args.steps
            if args.quick:  # one training run instead of McGIP plus the no-gaze baseline
                config["evaluation"]["baseline"] = "none"
            trace = submit_retrain(client, world, config)
            follower = threading.Thread(target=follow_job, args=(world, trace, 600.0), daemon=True)
            follower.start()
            busy: list[float] = []
            for i in range(args.sessions, args.sessions + args.during):
                case_id, seconds = pair_latency(client, world, new_cases[i], i)
                case_ids.append(case_id)
                # Only sessions that finished while training was still going count as "during".
                if trace.ended_at is None or trace.ended_at > time.perf_counter() - seconds:
                    busy.append(seconds)
            follower.join()
    except Exception:
        tail = log_path.read_text(errors="replace").splitlines()[-30:]
        print("  server log tail:\n    " + "\n    ".join(tail))
        raise
    finally:
        stop_embedded(server)
    figures = summarise(latencies, busy, round_trips, trace, options)
    stored = pairs_in_database(data_dir, case_ids)
    figures["pairs_per_new_case_min"] = min(stored.values(), default=0)
    print_report(figures)
    print(f"  pairs stored per new case (database): {sorted(stored.values())}")
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2))
    if args.keep:
        print(f"  data kept in {data_dir}")
    else:
        shutil.rmtree(data_dir, ignore_errors=True)
    ok = trace.state == "succeeded" and figures["pairs_per_new_case_min"] > 0 and _finite(figures)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
