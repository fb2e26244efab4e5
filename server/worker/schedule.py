"""Schedules run by every worker's main loop (idempotent, so several workers may run them)."""

from __future__ import annotations

import logging

from server.db import Database

logger = logging.getLogger(__name__)


def tick(db: Database) -> None:
    """Queue the jobs that are due."""
