"""The ``mcgip`` command line: one entry point, one module per command group."""

from __future__ import annotations

# Importing a command module registers its commands on ``app``.
from server.cli import (  # noqa: F401
    bench,
    db,
    demo,
    export_model,
    gaze_io,
    pacs,
    pairs,
    serve,
    tracker,
    train,
    users,
)
from server.cli.app import app


def main() -> None:
    app()
