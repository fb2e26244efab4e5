"""``mcgip db``: schema migrations."""

from __future__ import annotations

import typer

from server import migrate
from server.cli.app import app
from server.settings import get_settings

db_app = typer.Typer(help="Database schema (Alembic).", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Migrate the database to ``revision`` (default: the latest)."""
    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrate.upgrade(settings.resolved_database_url, revision)
    typer.echo(f"database at {revision}")


@db_app.command("downgrade")
def downgrade(revision: str = typer.Argument(..., help="Target revision, e.g. base or -1.")) -> None:
    """Migrate the database down to ``revision``."""
    migrate.downgrade(get_settings().resolved_database_url, revision)
    typer.echo(f"database at {revision}")
