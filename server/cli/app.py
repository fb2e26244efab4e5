"""The root Typer application every command module attaches to."""

from __future__ import annotations

import logging

import typer

from server.settings import get_settings

app = typer.Typer(
    name="mcgip",
    help="McGIP: gaze-guided contrastive pre-training for computer-assisted diagnosis.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _configure_logging(verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging.")) -> None:
    level = logging.DEBUG if verbose else getattr(logging, get_settings().log_level.upper(), logging.INFO)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def fail(message: str, code: int = 2) -> None:
    """Report a usage or input problem and exit non-zero."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)
