"""``mcgip bench ws-abuse``: abusive gaze-socket clients must not exhaust the server or starve others.

A real server (uvicorn subprocess, SQLite, the same set-up as ``bench ingest``) and two attacks,
each driven from a separate process so that the attacker's own work does not slow the probes:

(a) *non-reading invalid-message client*: one socket sends tiny invalid messages as fast as TCP
    lets it and never reads a byte. Measured: the server's RSS growth over the attack (target
    <= 50 MB) and ``GET /api/health`` latency p99 from another client (target <= 200 ms).
(b) *valid-frame flooder*: one reader streams valid 200-sample frames as fast as it can (reading
    its replies). Measured: another user's ``GET /api/auth/me`` p99 during the flood against the
    same probe's p99 with no flood, in the same run (target <= 3x).

Both are printed as ratios to their targets (<= 1.00 meets the target).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

from bench.ingest import (
    COUNTERS_PATH,
    REPO_ROOT,
    World,
    free_port,
    percentile,
    prepare,
    sample_blocks,
    start_server,
    stop_server,
)

RSS_TARGET_MB = 50.0
HEALTH_P99_TARGET_MS = 200.0
ME_RATIO_TARGET = 3.0
FLOOD_SAMPLES_PER_FRAME = 200


def rss_mb(pid: int) -> float:
    """Resident set size of process ``pid`` in MB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    raise RuntimeError(f"no VmRSS for pid {pid}")


class Prober:
    """GETs ``url`` every ``period_s`` on a thread (one keep-alive connection) and records latencies."""

    def __init__(self, url: str, headers: dict[str, str] | None = None, period_s: float = 0.02) -> None:
        self.url = url
        self.headers = headers or {}
        self.period_s = period_s
        self.latencies_ms: list[float] = []
        self.started_at: list[float] = []
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self._stop.is_set():
                start = time.perf_counter()
                try:
                    ok = client.get(self.url, headers=self.headers).status_code == 200
                except httpx.HTTPError:
                    ok = False
                if ok:
                    self.latencies_ms.append((time.perf_counter() - start) * 1000)
                    self.started_at.append(start)
                else:
                    self.failures += 1
                self._stop.wait(max(0.0, self.period_s - (time.perf_counter() - start)))

    def start(self) -> Prober:
        self._thread.start()
        return self

    def stop(self) -> Prober:
        self._stop.set()
        self._thread.join()
        return self

    def run_for(self, seconds: float) -> Prober:
        self.start()
        time.sleep(seconds)
        return self.stop()

    def between(self, windows: list[tuple[float, float]]) -> list[float]:
        """Latencies of the requests that started inside one of ``windows`` (perf_counter times)."""
        return [
            ms
            for at, ms in zip(self.started_at, self.latencies_ms, strict=True)
            if any(a <= at < b for a, b in windows)
        ]


# ---- attackers (run in their own process: ``python -m bench.ws_abuse --attacker ...``) ----------


def _masked(payload: bytes) -> bytes:
    mask = os.urandom(4)
    n = len(payload)
    assert n < 126
    return bytes([0x81, 0x80 | n]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def _invalid_sender(url: str, seconds: float) -> dict[str, int]:
    """One socket sending tiny invalid messages, never reading (a small receive buffer, no reads)."""
    host_port, _, path = url.removeprefix("ws://").partition("/")
    host, port = host_port.split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
    reader, writer = await asyncio.open_connection(sock=sock)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            f"GET /{path} HTTP/1.1\r\nHost: {host_port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    status = await reader.readuntil(b"\r\n\r\n")
    if not status.startswith(b"HTTP/1.1 101"):
        raise RuntimeError(f"handshake refused: {status[:80]!r}")
    # Pre-masked batch of 100 messages; different masks do not matter to the server.
    batch = b"".join(_masked(b'{"type":"nope"}') for _ in range(100))
    sent = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        writer.write(batch)
        try:
            await asyncio.wait_for(writer.drain(), timeout=max(0.01, end - time.monotonic()))
        except (TimeoutError, ConnectionError):
            break
        sent += 100
    writer.transport.abort()
    return {"messages_sent": sent}


async def _flooder(url: str, session_id: int, seconds: float) -> dict[str, int]:
    """One reader streaming valid 200-sample frames as fast as the socket takes them."""
    from websockets.asyncio.client import connect

    blocks, _ = sample_blocks(FLOOD_SAMPLES_PER_FRAME, n_blocks=16)
    counts = {"frames_sent": 0, "acks": 0, "rate_limited": 0, "other_errors": 0}
    async with connect(url, compression=None, max_size=None, ping_interval=None) as ws:
        await ws.send(json.dumps({"type": "hello", "session_id": session_id}))
        await ws.recv()
        print("ready", flush=True)

        async def receive() -> None:
            async for message in ws:
                text = message if isinstance(message, str) else message.decode()
                if text.startswith('{"type":"ack"'):
                    counts["acks"] += 1
                elif '"rate_limited"' in text:
                    counts["rate_limited"] += 1
                else:
                    counts["other_errors"] += 1

        receiver = asyncio.create_task(receive())
        end = time.monotonic() + seconds
        seq = 0
        while time.monotonic() < end:
            try:
                await asyncio.wait_for(
                    ws.send(f'{{"type":"frame","seq":{seq},"samples":{blocks[seq % len(blocks)]}}}'),
                    timeout=max(0.01, end - time.monotonic()),
                )
            except TimeoutError:
                break
            seq += 1
        counts["frames_sent"] = seq
        await asyncio.sleep(0.5)
        receiver.cancel()
    return counts


def attacker_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench.ws_abuse --attacker")
    parser.add_argument("--attacker", choices=["invalid", "flood"], required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--session", type=int, default=0)
    parser.add_argument("--seconds", type=float, required=True)
    args = parser.parse_args(argv)
    if args.attacker == "invalid":
        result = asyncio.run(_invalid_sender(args.url, args.seconds))
    else:
        result = asyncio.run(_flooder(args.url, args.session, args.seconds))
    print(json.dumps(result), flush=True)
    return 0


def start_attacker(kind: str, url: str, seconds: float, session_id: int = 0) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "bench.ws_abuse", "--attacker", kind, "--url", url]
    command += ["--session", str(session_id), "--seconds", str(seconds)]
    return subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)


def attacker_result(process: subprocess.Popen[str]) -> dict[str, int]:
    out, _ = process.communicate(timeout=300)
    if process.returncode != 0:
        raise RuntimeError(f"attacker exited with {process.returncode}")
    return dict(json.loads(out.strip().splitlines()[-1]))


# ---- the two attacks -----------------------------------------------------------------------------


def attack_invalid(base: str, world: World, server_pid: int, seconds: float) -> dict[str, float]:
    idle = Prober(f"{base}/api/health").run_for(min(5.0, seconds / 2))
    before = rss_mb(server_pid)
    token = world.durable[0].token
    attacker = start_attacker("invalid", f"ws{base.removeprefix('http')}/ws/gaze?token={token}", seconds)
    peak = [before]
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(0.25):
            peak[0] = max(peak[0], rss_mb(server_pid))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    probe = Prober(f"{base}/api/health").run_for(seconds)
    sent = attacker_result(attacker)["messages_sent"]
    stop.set()
    watcher.join()
    growth = max(peak[0], rss_mb(server_pid)) - before
    p99 = percentile(probe.latencies_ms, 99)
    print(f"(a) non-reading client sending invalid messages for {seconds:g} s: {sent} messages sent")
    print(
        f"    server RSS {before:.1f} MB -> peak {before + growth:.1f} MB: growth {growth:.1f} MB,"
        f" ratio to the {RSS_TARGET_MB:g} MB target {growth / RSS_TARGET_MB:.2f}"
    )
    print(
        f"    /api/health p99 {p99:.1f} ms (idle {percentile(idle.latencies_ms, 99):.1f} ms,"
        f" {len(probe.latencies_ms)} requests, {probe.failures} failed),"
        f" ratio to the {HEALTH_P99_TARGET_MS:g} ms target {p99 / HEALTH_P99_TARGET_MS:.2f}"
    )
    return {
        "messages_sent": sent,
        "rss_growth_mb": growth,
        "rss_ratio": growth / RSS_TARGET_MB,
        "health_p99_ms": p99,
        "health_ratio": p99 / HEALTH_P99_TARGET_MS,
        "health_failures": probe.failures,
    }


def attack_flood(base: str, world: World, seconds: float, rounds: int = 4) -> dict[str, float]:
    """Idle and flood windows alternate (the flooder is stopped and continued with SIGSTOP/SIGCONT),
    so that a drift in the machine's load affects both conditions alike."""
    victim = {"Authorization": f"Bearer {world.durable[1].token}"}
    flooder = world.durable[0]
    url = f"ws{base.removeprefix('http')}/ws/gaze?token={flooder.token}"
    window = seconds / rounds
    attacker = start_attacker("flood", url, 2 * seconds + 60, flooder.session_id)
    assert attacker.stdout is not None
    if attacker.stdout.readline().strip() != "ready":
        raise RuntimeError("flooder did not connect")
    attacker.send_signal(signal.SIGSTOP)
    time.sleep(0.5)
    probe = Prober(f"{base}/api/auth/me", victim).start()
    idle_windows: list[tuple[float, float]] = []
    flood_windows: list[tuple[float, float]] = []
    settle = min(0.3, window / 4)  # requests right after a switch belong to neither condition
    for _ in range(rounds):
        for windows, signum in ((idle_windows, signal.SIGSTOP), (flood_windows, signal.SIGCONT)):
            attacker.send_signal(signum)
            start = time.perf_counter()
            time.sleep(window)
            windows.append((start + settle, time.perf_counter()))
    attacker.send_signal(signal.SIGTERM)
    probe.stop()
    attacker.wait(timeout=60)
    stats = flood_stats(base, flooder.session_id, world)
    idle, busy = probe.between(idle_windows), probe.between(flood_windows)
    idle_p99, busy_p99 = percentile(idle, 99), percentile(busy, 99)
    ratio = busy_p99 / idle_p99
    flooding_s = rounds * window
    print(
        f"(b) one reader flooding valid {FLOOD_SAMPLES_PER_FRAME}-sample frames, {rounds} flood windows of"
        f" {window:g} s alternating with idle ones: {stats['frames']} frames stored"
        f" (~{stats['samples'] / flooding_s:.0f} samples/s while flooding), {stats['rate_limited']} refused"
        f" with rate_limited"
    )
    print(
        f"    another user's /api/auth/me p99: idle {idle_p99:.1f} ms ({len(idle)} requests),"
        f" during the flood {busy_p99:.1f} ms ({len(busy)} requests, {probe.failures} failed):"
        f" {ratio:.2f}x idle,"
        f" ratio to the {ME_RATIO_TARGET:g}x target {ratio / ME_RATIO_TARGET:.2f}"
    )
    return {
        "idle_p99_ms": idle_p99,
        "flood_p99_ms": busy_p99,
        "me_ratio": ratio,
        "me_target_ratio": ratio / ME_RATIO_TARGET,
        "flood_acks": stats["frames"],
        "flood_rate_limited": stats["rate_limited"],
        "me_failures": probe.failures,
    }


def flood_stats(base: str, session_id: int, world: World) -> dict[str, int]:
    """Frames and samples the flooder got stored, and how often it was refused (server counters)."""
    from sqlalchemy import select

    from server.db import Database
    from server.models import ReadingSession

    db = Database(world.url)
    with db.session() as session:
        row = session.execute(
            select(ReadingSession.chunk_count, ReadingSession.sample_count).where(
                ReadingSession.id == session_id
            )
        ).one()
    db.dispose()
    refused = _metric(base, "rate_limited")
    return {"frames": int(row[0]), "samples": int(row[1]), "rate_limited": refused}


def _metric(base: str, name: str) -> int:
    response = httpx.get(f"{base}{COUNTERS_PATH}", timeout=10)
    return int(response.json()[name])


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--attacker" in argv:
        return attacker_main(argv)
    parser = argparse.ArgumentParser(prog="mcgip bench ws-abuse", description=__doc__.split("\n\n")[0])
    parser.add_argument("--invalid-seconds", type=float, default=20.0, help="duration of attack (a)")
    parser.add_argument(
        "--flood-seconds", type=float, default=20.0, help="seconds of (b) per condition (idle, flood)"
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 4 s and 3 s")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    if args.quick:
        args.invalid_seconds, args.flood_seconds = 4.0, 3.0
    data_dir = Path(tempfile.mkdtemp(prefix="mcgip-bench-ws-abuse-"))
    world = prepare(data_dir, 2)
    port = free_port()
    server = start_server(data_dir, world, port)
    base = f"http://127.0.0.1:{port}"
    load = os.getloadavg()
    print(f"ws-abuse: uvicorn pid {server.pid}, SQLite, {os.cpu_count()} CPUs, load average {load[0]:.1f}")
    try:
        invalid = attack_invalid(base, world, server.pid, args.invalid_seconds)
        flood = attack_flood(base, world, args.flood_seconds)
    finally:
        stop_server(server)
        import shutil

        shutil.rmtree(data_dir, ignore_errors=True)
    print(f"  load average after the run {os.getloadavg()[0]:.1f}")
    if args.json is not None:
        args.json.write_text(json.dumps({"invalid": invalid, "flood": flood}, indent=2))
    met = invalid["rss_ratio"] <= 1 and invalid["health_ratio"] <= 1 and flood["me_target_ratio"] <= 1
    print(f"  targets {'met' if met else 'NOT met'}")
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
