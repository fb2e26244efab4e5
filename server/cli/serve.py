"""``mcgip serve`` and ``mcgip worker``."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from types import FrameType

import typer
import uvicorn

from server.cli.app import app
from server.settings import get_settings

logger = logging.getLogger(__name__)


def _exit_on_sigterm(signum: int, _frame: FrameType | None) -> None:
    # uvicorn restores this handler after its graceful shutdown and re-raises the signal; exiting
    # through SystemExit (not the default kill) lets ``serve`` stop the worker it started.
    raise SystemExit(128 + signum)


@app.command("serve")
def serve(
    host: str | None = typer.Option(None, "--host", help="Bind address (default MCGIP_HOST or 127.0.0.1)."),
    port: int | None = typer.Option(None, "--port", help="Port (default MCGIP_PORT or 8000)."),
    with_worker: bool = typer.Option(False, "--with-worker", help="Also run a background worker."),
) -> None:
    """Run the web server (and optionally a worker beside it)."""
    settings = get_settings()
    worker: subprocess.Popen[bytes] | None = None
    if with_worker:
        # A separate process: the worker's training subprocesses import torch, the web process never does.
        command = [sys.executable, "-m", "server.cli", "worker", "--parent-pid", str(os.getpid())]
        worker = subprocess.Popen(command)
        logger.info("worker started (pid %s)", worker.pid)
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        uvicorn.run(
            "server.app:create_app",
            factory=True,
            host=host or settings.host,
            port=port or settings.port,
            log_level=settings.log_level.lower(),
            ws_max_size=4 * 1024 * 1024,
        )
    finally:
        if worker is not None:
            worker.terminate()
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()


@app.command("worker")
def worker(
    parent_pid: int | None = typer.Option(
        None, "--parent-pid", hidden=True, help="Stop when this process (the server that started us) exits."
    ),
) -> None:
    """Run a background worker that claims jobs from the database queue."""
    from server.worker.runner import run_worker

    run_worker(get_settings(), parent_pid=parent_pid)
