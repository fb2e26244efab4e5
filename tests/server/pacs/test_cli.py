"""``mcgip import dicomweb`` against Orthanc: imports, re-runs without duplicates, rejects bad input."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from server.cli import app
from server.db import Database
from server.models import Case
from server.settings import Settings, get_settings
from tests.server.pacs.data import ct_series, dicom_file, make_dataset
from tests.support.orthanc import OrthancServer


@pytest.fixture
def cli(settings: Settings, orthanc: OrthancServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("MCGIP_DATABASE_URL", settings.resolved_database_url)
    monkeypatch.setenv("MCGIP_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("MCGIP_SECRET_KEY", settings.secret_key)
    monkeypatch.setenv("MCGIP_PACS_USERNAME", orthanc.username)
    monkeypatch.setenv("MCGIP_PACS_PASSWORD", orthanc.password)
    monkeypatch.setenv("MCGIP_WORKER_HEARTBEAT_S", "0.2")
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def test_import_dicomweb_cli(cli: CliRunner, orthanc: OrthancServer, db: Database) -> None:
    series = ct_series(2)
    for data in series:
        orthanc.upload(data)
    orthanc.upload(dicom_file("MR_small.dcm"))
    make_dataset(db, "from-pacs")
    args = ["import", "dicomweb", "--url", orthanc.dicomweb_url, "--dataset", "from-pacs", "--modality", "CT"]
    first = cli.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout.strip().splitlines()[-1])["imported"] == 2
    assert orthanc.password not in first.output
    again = cli.invoke(app, args)
    assert again.exit_code == 0, again.output
    summary = json.loads(again.stdout.strip().splitlines()[-1])
    assert (summary["imported"], summary["already_imported"]) == (0, 2)
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Case)) == 2

    bad_date = cli.invoke(
        app,
        [
            "import",
            "dicomweb",
            "--url",
            orthanc.dicomweb_url,
            "--dataset",
            "from-pacs",
            "--date-from",
            "yesterday",
        ],
    )
    assert bad_date.exit_code == 2 and "--date-from" in bad_date.output
    no_url = cli.invoke(app, ["import", "dicomweb", "--dataset", "from-pacs"])
    assert no_url.exit_code == 2 and "MCGIP_PACS_URL" in no_url.output
    down = cli.invoke(
        app, ["import", "dicomweb", "--url", "http://127.0.0.1:9/dicom-web", "--dataset", "from-pacs"]
    )
    assert down.exit_code == 1 and "unreachable" in down.output


def test_export_dicomweb_cli_refuses_a_dataset_that_does_not_send(cli: CliRunner, db: Database) -> None:
    make_dataset(db, "quiet")
    result = cli.invoke(app, ["export", "dicomweb", "--dataset", "quiet"])
    assert result.exit_code == 1 and "pacs_results.enabled" in result.output
