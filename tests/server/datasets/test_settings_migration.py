"""Migration 0005 rewrites stored dataset settings in their complete, valid form."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from server import migrate
from server.datasets.settings import DatasetSettings
from server.db import make_engine
from tests.conftest import create_pg_database


@pytest.fixture
def empty_db_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'migrate.db'}"
    return create_pg_database(request.getfixturevalue("pg_cluster"), "dsmig")


def test_upgrade_normalises_settings(empty_db_url: str) -> None:
    migrate.upgrade(empty_db_url, "0004")
    engine = make_engine(empty_db_url)
    datasets = sa.table(
        "datasets",
        sa.column("id", sa.Integer),
        sa.column("name", sa.String),
        sa.column("description", sa.Text),
        sa.column("label_set", sa.JSON),
        sa.column("image_kind", sa.String),
        sa.column("settings", sa.JSON),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    rows = {
        1: {},
        2: {"metric": "dhash", "threshold": 0.95, "features": {"grid": [16, 16]}},
        3: {"metric": "nope", "colour": "red", "top_k": 5},
    }
    with engine.begin() as conn:
        for dataset_id, settings in rows.items():
            conn.execute(
                datasets.insert().values(
                    id=dataset_id,
                    name=f"d{dataset_id}",
                    description="",
                    label_set=["a", "b"],
                    image_kind="unstructured",
                    settings=settings,
                    created_at=sa.func.now(),
                )
            )
    engine.dispose()
    migrate.upgrade(empty_db_url)
    engine = make_engine(empty_db_url)
    with engine.connect() as conn:
        stored = dict(conn.execute(sa.select(datasets.c.id, datasets.c.settings)).all())
    engine.dispose()
    assert stored[1] == DatasetSettings().to_json()
    assert stored[2] == DatasetSettings(metric="dhash", threshold=0.95, features={"grid": (16, 16)}).to_json()
    # invalid keys fall back to their defaults, valid ones are kept
    assert stored[3] == DatasetSettings(top_k=5).to_json()
