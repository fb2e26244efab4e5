"""Alembic revisions match the ORM models, and upgrade -> downgrade -> upgrade works on both backends."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from server import migrate
from server.db import make_engine
from server.models import Base
from tests.conftest import create_pg_database


@pytest.fixture
def empty_db_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'migrate.db'}"
    return create_pg_database(request.getfixturevalue("pg_cluster"), "mig")


def test_models_and_migrations_do_not_diverge(empty_db_url: str) -> None:
    migrate.upgrade(empty_db_url)
    engine = make_engine(empty_db_url)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    engine.dispose()
    assert diff == [], f"models and migrations diverge; add a revision: {diff}"


def test_upgrade_downgrade_upgrade(empty_db_url: str) -> None:
    expected = set(Base.metadata.tables)
    migrate.upgrade(empty_db_url)
    engine = make_engine(empty_db_url)
    assert expected <= set(inspect(engine).get_table_names())
    migrate.downgrade(empty_db_url, "base")
    engine.dispose()
    engine = make_engine(empty_db_url)
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    engine.dispose()
    migrate.upgrade(empty_db_url)
    engine = make_engine(empty_db_url)
    assert expected <= set(inspect(engine).get_table_names())
    engine.dispose()
