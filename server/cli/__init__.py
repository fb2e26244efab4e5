"""The ``mcgip`` command line: one entry point, one module per command group."""

from __future__ import annotations

from server.cli.app import app
from server.cli import bench, db, demo, serve, users  # noqa: F401  (registers commands)
from server.cli import gaze_io, tracker  # noqa: F401  (gaze import/export, tracker bridge)
from server.cli import export_model, pairs, train  # noqa: F401  (pairs, train, export model)


def main() -> None:
    app()
