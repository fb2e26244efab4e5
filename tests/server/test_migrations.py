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


def test_autoincrement_rebuild_keeps_rows_and_stops_id_reuse(tmp_path: Path) -> None:
    """0006 rebuilds SQLite tables with AUTOINCREMENT; no row is lost (no cascade from the rebuild of a
    parent table) and the highest id of a deleted row is not handed out again."""
    url = f"sqlite:///{tmp_path / 'ids.db'}"
    migrate.upgrade(url, "0005")
    engine = make_engine(url)
    now = "2026-01-01 00:00:00"
    with engine.begin() as conn:
        for name in ("u1", "u2", "u3"):
            conn.exec_driver_sql(
                "INSERT INTO users (username, display_name, password_hash, role, is_active, token_version,"
                " created_at) VALUES (?, '', 'x', 'reader', 1, 0, ?)",
                (name, now),
            )
        conn.exec_driver_sql(
            "INSERT INTO datasets (name, description, label_set, image_kind, settings, created_at)"
            " VALUES ('d', '', '[]', 'unstructured', '{}', ?)",
            (now,),
        )
        for i in range(4):
            conn.exec_driver_sql(
                "INSERT INTO cases (dataset_id, title, attributes, created_at) VALUES (1, ?, '{}', ?)",
                (f"c{i}", now),
            )
        conn.exec_driver_sql("DELETE FROM users WHERE id = 3")
    engine.dispose()

    migrate.upgrade(url)
    engine = make_engine(url)
    with engine.begin() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM cases").scalar() == 4
        assert conn.exec_driver_sql("SELECT count(*) FROM users").scalar() == 2
        for table in ("users", "cases", "reading_sessions", "jobs", "model_versions"):
            sql = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE name = ?", (table,)).scalar()
            assert "AUTOINCREMENT" in sql, table
        conn.exec_driver_sql("DELETE FROM cases WHERE id = 4")
        conn.exec_driver_sql(
            "INSERT INTO cases (dataset_id, title, attributes, created_at) VALUES (1, 'new', '{}', ?)", (now,)
        )
        new_id = conn.exec_driver_sql("SELECT id FROM cases WHERE title = 'new'").scalar()
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()
    assert new_id == 5
    migrate.downgrade(url, "0005")
    engine = make_engine(url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM cases").scalar() == 4
        sql = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE name = 'cases'").scalar()
        assert "AUTOINCREMENT" not in sql
    engine.dispose()
