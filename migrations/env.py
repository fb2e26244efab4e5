"""Alembic environment: migrates the database named by the Alembic config or the McGIP settings."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from server.db import make_engine
from server.models import Base
from server.settings import get_settings

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    return config.get_main_option("sqlalchemy.url") or get_settings().resolved_database_url


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things in place; batch mode rebuilds tables instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(_url())
    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            # Batch mode rebuilds a table by copy, DROP and rename. With foreign keys enforced,
            # dropping a parent table deletes (ON DELETE CASCADE) every child row first. The pragma
            # only works outside a transaction, so it is set before the migrations begin one.
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
            conn.commit()
        _configure(conn)
        with context.begin_transaction():
            context.run_migrations()
            if sqlite:
                broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"migration left rows with dangling foreign keys: {broken[:5]}")
        if sqlite:
            conn.exec_driver_sql("PRAGMA foreign_keys=ON")
    engine.dispose()


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
