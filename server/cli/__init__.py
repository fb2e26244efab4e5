"""The ``mcgip`` command line: one entry point, one module per command group."""

from __future__ import annotations

from server.cli.app import app
from server.cli import bench, db, demo, serve, users  # noqa: F401  (registers commands)


def main() -> None:
    app()
