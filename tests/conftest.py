"""Shared fixtures: every database-touching test runs on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from server.app import create_app
from server.db import Database
from server.models import Base, Role, User
from server.settings import Settings
from tests.support.orthanc import OrthancServer, start_orthanc
from tests.support.pg import PgCluster, start_cluster

BACKENDS = ["sqlite", "postgresql"]
PASSWORD = "correct-horse-battery"
# Cheap argon2 parameters for fixture users: verification cost follows the stored hash, and tests log in
# hundreds of times. Production hashes use argon2-cffi's defaults (server/auth/passwords.py).
_PASSWORD_HASH = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(PASSWORD)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the browser tests last.

    Playwright's sync API keeps an asyncio loop marked as running on the main thread for as long as
    its (session-wide) driver lives; tests that call ``asyncio.run`` must therefore come before it.
    """
    items.sort(key=lambda item: item.nodeid.startswith("tests/e2e/"))


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    cluster = start_cluster()
    if cluster is None:
        if os.environ.get("MCGIP_TEST_REQUIRE_PG"):
            pytest.fail("PostgreSQL binaries not found but MCGIP_TEST_REQUIRE_PG is set")
        pytest.skip("PostgreSQL is not installed")
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def orthanc_server() -> Iterator[OrthancServer]:
    """One Orthanc PACS (DICOMweb plugin, basic auth) for the test session."""
    server = start_orthanc()
    if server is None:
        if os.environ.get("MCGIP_TEST_REQUIRE_ORTHANC"):
            pytest.fail("Orthanc or its DICOMweb plugin not found but MCGIP_TEST_REQUIRE_ORTHANC is set")
        pytest.skip("Orthanc (Debian packages orthanc, orthanc-dicomweb) is not installed")
    yield server
    server.stop()


@pytest.fixture
def orthanc(orthanc_server: OrthancServer) -> OrthancServer:
    """The session's Orthanc, emptied before the test."""
    orthanc_server.clear()
    return orthanc_server


def create_pg_database(cluster: PgCluster, prefix: str = "t") -> str:
    """A new empty database on the test cluster; returns its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(cluster.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return cluster.url_for(name)


@pytest.fixture(scope="session")
def pg_schema_url(pg_cluster: PgCluster) -> str:
    """One PostgreSQL database with the schema, truncated between tests."""
    url = create_pg_database(pg_cluster, "schema")
    engine = create_engine(url)
    Base.metadata.create_all(engine)
    engine.dispose()
    return url


def _truncate_pg(url: str) -> None:
    engine = create_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def db_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A database with the current schema, empty, on the parametrised backend."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'test.db'}"
        db = Database(url)
        Base.metadata.create_all(db.engine)
        db.dispose()
        return url
    url = str(request.getfixturevalue("pg_schema_url"))
    _truncate_pg(url)
    return url


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=db_url,
        data_dir=tmp_path / "data",
        secret_key="test-secret-key-that-is-long-enough-0123456789",
        login_attempts=5,
    )


@pytest.fixture
def db(settings: Settings) -> Iterator[Database]:
    database = Database(settings.resolved_database_url)
    yield database
    database.dispose()


@dataclass
class Users:
    admin: User
    reader: User
    reader2: User


@pytest.fixture
def users(db: Database) -> Users:
    with db.session() as session:
        made = [
            User(username=name, display_name=name, password_hash=_PASSWORD_HASH, role=role)
            for name, role in (("admin", Role.admin), ("alice", Role.reader), ("bob", Role.reader))
        ]
        session.add_all(made)
    return Users(*made)


@pytest.fixture
def app_client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), base_url="http://localhost") as client:
        yield client


def token_for(client: TestClient, username: str, password: str = PASSWORD, scope: str = "") -> str:
    data = {"username": username, "password": password}
    if scope:
        data["scope"] = scope
    response = client.post("/api/auth/token", data=data)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


@pytest.fixture
def auth(app_client: TestClient, users: Users) -> Callable[[str], dict[str, str]]:
    """Bearer headers for a username (tokens cached per test); ``admin`` holds every scope, others the
    default ones."""
    cache: dict[str, dict[str, str]] = {}

    def headers(username: str) -> dict[str, str]:
        if username not in cache:
            scope = "read write export predict" if username == "admin" else ""
            cache[username] = {"Authorization": f"Bearer {token_for(app_client, username, scope=scope)}"}
        return cache[username]

    return headers
