"""``mcgip pairs recompute``, ``mcgip train`` and ``mcgip export model`` against a real database."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from server.cli import app
from server.db import Database
from server.models import AuditLog, ModelVersion, Pair
from server.settings import Settings, get_settings
from server.storage import BlobStore
from tests.conftest import Users
from tests.server.worker.data import TinyDataset, make_dataset
from tests.server.worker.test_gaze_jobs import add_session
from tests.server.worker.test_retrain import FAKE, tiny_config


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("MCGIP_DATABASE_URL", settings.resolved_database_url)
    monkeypatch.setenv("MCGIP_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("MCGIP_SECRET_KEY", settings.secret_key)
    monkeypatch.setenv("MCGIP_WORKER_TRAIN_COMMAND", " ".join(FAKE))
    monkeypatch.setenv("MCGIP_WORKER_HEARTBEAT_S", "0.2")
    monkeypatch.setenv("FAKE_STEP_S", "0.01")
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


@pytest.fixture
def data(db: Database, settings: Settings, users: Users) -> TinyDataset:
    return make_dataset(db, BlobStore(settings.blob_dir), users.reader, n_cases=3)


def test_pairs_recompute(cli_env: CliRunner, db: Database, data: TinyDataset, users: Users) -> None:
    with db.session() as session:
        session.query(Pair).delete()
    for i, case_id in enumerate(data.case_ids):
        add_session(db, case_id, users.reader.id, seed=i, label_b=bool(i % 2))
    result = cli_env.invoke(app, ["pairs", "recompute", "--dataset", "tiny", "--full"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [x["kind"] for x in lines] == ["session-features", "session-features", "pairs"]
    assert lines[-1]["result"]["pairs_written"] == 3
    with db.session() as session:
        assert len(session.scalars(select(Pair)).all()) == 3
    missing = cli_env.invoke(app, ["pairs", "recompute", "--dataset", "nope"])
    assert missing.exit_code == 2 and "not found" in missing.output


def test_train_then_export_model(cli_env: CliRunner, db: Database, data: TinyDataset, tmp_path: Path) -> None:
    config = tmp_path / "train.json"
    config.write_text(json.dumps({"train": {"batch_size": 0}}))
    bad = cli_env.invoke(app, ["train", "--config", str(config)])
    assert bad.exit_code == 2 and "train.batch_size" in bad.output
    config.write_text(json.dumps(tiny_config(steps=4, every=2)))
    result = cli_env.invoke(app, ["train", "--config", str(config), "--dataset", str(data.dataset_id)])
    assert result.exit_code == 0, result.output
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    with db.session() as session:
        version = session.get(ModelVersion, outcome["model_version_id"])
        assert version is not None and version.version == 1
    none_active = cli_env.invoke(app, ["export", "model", "--format", "onnx"])
    assert none_active.exit_code == 2 and "no active model" in none_active.output
    out = tmp_path / "m.onnx"
    exported = cli_env.invoke(
        app, ["export", "model", "--format", "onnx", "--model", str(version.id), "--out", str(out)]
    )
    assert exported.exit_code == 0, exported.output
    info = json.loads(exported.stdout)
    assert info["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest() == version.checksums["encoder.onnx"]
    with db.session() as session:
        assert (
            session.scalars(select(AuditLog).where(AuditLog.action == "model_export")).one().detail["via"]
            == "cli"
        )
