"""``mcgip tracker-bridge``: forward a hardware eye tracker to the reader's open viewer."""

from __future__ import annotations

import logging
import os
import sys

import httpx
import typer

from server.cli.app import app, fail
from server.tracker_bridge.bridge import Bridge, relay_url
from server.tracker_bridge.source import Tracker

logger = logging.getLogger(__name__)


def _token(server: str, token: str | None, username: str | None) -> str:
    if token:
        return token
    if os.environ.get("MCGIP_TOKEN"):
        return os.environ["MCGIP_TOKEN"]
    if username is None:
        fail("give --token, MCGIP_TOKEN or --username (password on standard input)")
        raise AssertionError  # fail() exits
    if sys.stdin.isatty():
        typer.echo("password: ", nl=False, err=True)
    password = sys.stdin.readline().rstrip("\r\n")
    response = httpx.post(
        f"{server.rstrip('/')}/api/auth/token", data={"username": username, "password": password}, timeout=30
    )
    if response.status_code != 200:
        fail(f"login failed ({response.status_code}): {response.text[:200]}")
    return str(response.json()["access_token"])


def _tracker(kind: str, host: str, port: int, rate: float, address: str | None) -> Tracker:
    if kind == "simulate":
        from server.tracker_bridge.simulated import SimulatedTracker

        return SimulatedTracker(rate_hz=rate)
    if kind == "tobii":
        from server.tracker_bridge.tobii import TobiiTracker

        return TobiiTracker(address=address)
    from server.tracker_bridge.gazepoint import GazepointTracker

    return GazepointTracker(host=host, port=port)


@app.command("tracker-bridge")
def tracker_bridge(
    server: str = typer.Option("http://127.0.0.1:8000", "--server", help="McGIP server base URL."),
    tracker: str = typer.Option("gazepoint", "--tracker", help="gazepoint, tobii or simulate."),
    simulate: bool = typer.Option(False, "--simulate", help="Same as --tracker simulate."),
    token: str | None = typer.Option(None, "--token", help="The reader's bearer token (or MCGIP_TOKEN)."),
    username: str | None = typer.Option(
        None, "--username", help="Log in as this reader (password on stdin)."
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Gazepoint Control host."),
    port: int = typer.Option(4242, "--port", help="Gazepoint Open Gaze API port."),
    address: str | None = typer.Option(
        None, "--address", help="Tobii tracker address (first found if unset)."
    ),
    rate: float = typer.Option(60.0, "--rate", min=1.0, help="Simulated sample rate (Hz)."),
    duration: float | None = typer.Option(None, "--duration", help="Stop after this many seconds."),
    batch_ms: float = typer.Option(20.0, "--batch-ms", min=1.0, help="Most time a sample waits to be sent."),
) -> None:
    """Read an eye tracker and send its gaze to the reader's open viewer page through the server."""
    kind = "simulate" if simulate else tracker
    if kind not in ("gazepoint", "tobii", "simulate"):
        fail(f"unknown tracker {kind!r}; choose gazepoint, tobii or simulate")
    try:
        source = _tracker(kind, host, port, rate, address)
        bridge = Bridge(source, relay_url(server, _token(server, token, username)), batch_ms=batch_ms)
        stats = bridge.run(duration_s=duration)
    except (RuntimeError, ValueError, OSError) as exc:
        fail(str(exc), code=1)
        return
    except KeyboardInterrupt:
        typer.echo("stopped", err=True)
        return
    typer.echo(f"sent {stats.sent} samples in {stats.batches} messages; dropped {stats.dropped}")
