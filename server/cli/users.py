"""``mcgip users``: account management from the shell."""

from __future__ import annotations

import sys

import typer

from server.cli.app import app, fail
from server.db import Database
from server.exceptions import DomainError
from server.models import Role
from server.settings import get_settings
from server.users.service import create_user

users_app = typer.Typer(help="Accounts.", no_args_is_help=True)
app.add_typer(users_app, name="users")


@users_app.command("create")
def create(
    username: str = typer.Option(..., "--username", help="Login name."),
    role: Role = typer.Option(..., "--role", help="admin or reader."),
    display_name: str = typer.Option("", "--display-name"),
) -> None:
    """Create an account; the password is read from standard input (first line)."""
    if sys.stdin.isatty():
        typer.echo("password: ", nl=False, err=True)
    password = sys.stdin.readline().rstrip("\r\n")
    db = Database(get_settings().resolved_database_url)
    try:
        with db.session() as session:
            user = create_user(
                session, username=username, password=password, role=role, display_name=display_name
            )
            typer.echo(f"created {user.role.value} {user.username!r} (id {user.id})")
    except DomainError as exc:
        fail(str(exc.detail))
    finally:
        db.dispose()
