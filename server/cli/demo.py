"""``mcgip demo``: demo data."""

from __future__ import annotations

import typer

from server.cli.app import app
from server.db import Database
from server.settings import get_settings

demo_app = typer.Typer(help="Demo data.", no_args_is_help=True)
app.add_typer(demo_app, name="demo")


@demo_app.command("seed")
def seed(
    cases: int = typer.Option(64, "--cases", min=1, help="Synthetic cases in the demo dataset."),
    size: int = typer.Option(256, "--size", min=32, help="Image side in pixels."),
) -> None:
    """Create demo accounts, synthetic cases and worklists (idempotent); print the logins."""
    from server.demo.seed import seed_demo

    settings = get_settings()
    db = Database(settings.resolved_database_url)
    try:
        with db.session() as session:
            report = seed_demo(session, settings, n_cases=cases, size=size)
    finally:
        db.dispose()
    typer.echo(
        f"demo dataset #{report.dataset_id}: {report.cases_total} cases ({report.cases_created} new), "
        f"{report.sessions_created} new simulated reading sessions"
    )
    typer.echo("demo logins:")
    for username, password in report.credentials.items():
        typer.echo(f"  {username:<8} {password}")
