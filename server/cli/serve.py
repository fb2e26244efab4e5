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
from server.demo.banner import announce_when_up, banner_text, public_url, stored_credentials
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
    demo: bool = typer.Option(
        False, "--demo", help="First migrate the database and seed the demo (what `make run` does)."
    ),
) -> None:
    """Run the web server (and optionally a worker beside it).

    Once the server answers, a banner with its URL and the demo logins (when a demo was seeded) is
    printed last, set apart from the log lines above it.
    """
    settings = get_settings()
    bind_host = host or settings.host
    bind_port = port or settings.port
    if demo:
        _prepare_demo()
    from server.demo.seed import credentials_path

    credentials = stored_credentials(credentials_path(settings))
    local = bind_host in ("0.0.0.0", "::", "")
    health = f"{public_url('127.0.0.1' if local else bind_host, bind_port)}/api/health"
    announce_when_up(health, lambda: typer.echo(banner_text(public_url(bind_host, bind_port), credentials)))
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
            host=bind_host,
            port=bind_port,
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


def _prepare_demo() -> None:
    """``mcgip db upgrade`` and ``mcgip demo seed`` in this process (one interpreter start, not three)."""
    from server import migrate
    from server.db import Database
    from server.demo.seed import seed_demo

    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrate.upgrade(settings.resolved_database_url, "head")
    db = Database(settings.resolved_database_url)
    try:
        with db.session() as session:
            report = seed_demo(session, settings)
    finally:
        db.dispose()
    logger.info(
        "demo dataset #%d: %d cases (%d new), %d new simulated reading sessions",
        report.dataset_id,
        report.cases_total,
        report.cases_created,
        report.sessions_created,
    )


@app.command("worker")
def worker(
    parent_pid: int | None = typer.Option(
        None, "--parent-pid", hidden=True, help="Stop when this process (the server that started us) exits."
    ),
) -> None:
    """Run a background worker that claims jobs from the database queue."""
    from server.worker.runner import run_worker

    run_worker(get_settings(), parent_pid=parent_pid)
