"""Settings validation: production refuses the shipped secret."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from server.settings import DEFAULT_SECRET_KEY, Settings


def test_production_refuses_default_secret() -> None:
    with pytest.raises(ValidationError, match="MCGIP_SECRET_KEY"):
        Settings(mode="production", secret_key=DEFAULT_SECRET_KEY)
    with pytest.raises(ValidationError, match="32 characters"):
        Settings(mode="production", secret_key="short")
    assert Settings(mode="production", secret_key="x" * 40).mode == "production"


def test_environment_contract(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MCGIP_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("MCGIP_DATABASE_URL", raising=False)
    settings = Settings()
    assert settings.resolved_database_url == f"sqlite:///{(tmp_path / 'mcgip.db').resolve()}"
    monkeypatch.setenv("MCGIP_DATABASE_URL", "postgresql://u@h/db")
    assert Settings().resolved_database_url == "postgresql://u@h/db"


def test_production_mode_from_env_refuses_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCGIP_MODE", "production")
    monkeypatch.delenv("MCGIP_SECRET_KEY", raising=False)
    with pytest.raises(ValidationError):
        Settings()
