"""The background worker process: claims queued jobs from the database and runs them."""

from __future__ import annotations

import logging
import signal
import threading

from server.settings import Settings

logger = logging.getLogger(__name__)


def run_worker(settings: Settings, *, poll_s: float = 2.0) -> None:
    """Run until SIGTERM/SIGINT, polling the job queue."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    logger.info("worker started; database %s", settings.resolved_database_url.split("@")[-1])
    while not stop.wait(poll_s):
        pass
    logger.info("worker stopped")
