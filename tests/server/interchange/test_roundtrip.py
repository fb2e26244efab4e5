"""Plain CSV import, bundle export, and import(export(x)) == x; the CLI commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import delete, select
from typer.testing import CliRunner

from server.cli import app
from server.interchange.records import ImportFailed
from server.interchange.service import ImportFormat, ImportOptions, export_gaze, import_gaze
from server.models import DiagnosisLabel, GazeChunk, ReadingSession, SessionStatus
from server.reading.samples import COLUMN, COLUMNS, FLAG_EYE, FLAG_ON_IMAGE, FLAG_VALID
from server.reading.service import session_samples
from server.settings import Settings, get_settings
from tests.server.interchange.conftest import World
from tests.server.interchange.files import write_csv


def import_csv(world: World, path: Path, case: str, reader: str = "alice", **kw: Any) -> list[int]:
    with world.db.session() as session:
        options = ImportOptions(case=case, **kw)
        return import_gaze(
            session, ImportFormat.csv, path, dataset=world.dataset, reader=reader, options=options
        ).created


def all_samples(world: World) -> dict[int, np.ndarray]:
    with world.db.session() as session:
        ids = session.scalars(select(ReadingSession.id).order_by(ReadingSession.id)).all()
        return {i: session_samples(session, i) for i in ids}


def test_plain_csv_samples_and_fixations(world: World, tmp_path: Path) -> None:
    samples = write_csv(
        tmp_path / "s.csv", ["t", "x", "y"], [[0, 10.5, 20.25], [16.7, "", ""], [33.3, 300, 5]]
    )
    (sid,) = import_csv(world, samples, "dcm-a")
    s = all_samples(world)[sid]
    assert s[0, COLUMN["image_x"]] == 10.5 and s[0, COLUMN["image_y"]] == 20.25
    flags = s[:, COLUMN["flags"]].astype(int)
    assert flags[0] & (FLAG_VALID | FLAG_ON_IMAGE | FLAG_EYE) == FLAG_VALID | FLAG_ON_IMAGE | FLAG_EYE
    assert not flags[1] & FLAG_VALID and s[1, COLUMN["image_x"]] == -1
    assert flags[2] & FLAG_VALID and not flags[2] & FLAG_ON_IMAGE  # x = 300 is past the 200 px wide image
    fix = write_csv(tmp_path / "f.csv", ["T_MS", "X", "Y", "Duration_ms"], [[0, 5, 5, 100], [150, 6, 6, 50]])
    (fid,) = import_csv(world, fix, "dcm-b", fixation_hz=20.0, eye_gaze=False)
    f = all_samples(world)[fid]
    np.testing.assert_allclose(f[:, COLUMN["t_ms"]], [0, 50, 100, 150, 200])
    assert not (f[:, COLUMN["flags"]].astype(int) & FLAG_EYE).any()


def test_plain_csv_errors(world: World, tmp_path: Path) -> None:
    bad = write_csv(
        tmp_path / "bad.csv", ["t", "x", "y"], [[0, 1, 1], [-5, 1, 1], [10, "1,5", 2], [20, 1, 1, 9]]
    )
    with pytest.raises(ImportFailed) as failed:
        import_csv(world, bad, "dcm-a")
    lines = sorted((e.line, e.message) for e in failed.value.errors)
    assert [line for line, _ in lines] == [3, 4, 5], lines
    assert "below 0" in lines[0][1] and "'1,5' is not a number" in lines[1][1] and "4 cells" in lines[2][1]
    with pytest.raises(ImportFailed, match="no case with external id 'nope'"):
        import_csv(world, write_csv(tmp_path / "ok.csv", ["t", "x", "y"], [[0, 1, 1]]), "nope")
    with pytest.raises(ImportFailed, match="give --case"), world.db.session() as session:
        import_gaze(session, ImportFormat.csv, tmp_path / "ok.csv", dataset=world.dataset, reader="alice")
    assert all_samples(world) == {}


def _stored_state(world: World) -> list[dict[str, object]]:
    """Everything a session is, minus database ids and the import bookkeeping."""
    out = []
    with world.db.session() as session:
        for reading in session.scalars(select(ReadingSession).order_by(ReadingSession.id)):
            label = session.scalar(select(DiagnosisLabel).where(DiagnosisLabel.session_id == reading.id))
            out.append(
                {
                    "case": reading.case_id,
                    "reader": reading.reader_id,
                    "source": reading.source,
                    "source_info": reading.source_info,
                    "display_info": reading.display_info,
                    "status": reading.status,
                    "label": (label.label, label.confidence, label.finding_box) if label else None,
                    "samples": session_samples(session, reading.id).tobytes(),
                }
            )
    return out


def test_export_import_round_trip(world: World, tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    # Awkward floats (thirds, tiny and huge magnitudes) must survive the text formats bit for bit.
    rows: list[list[float | str]] = [
        [i / 3, rng.uniform(-5, 205) * np.pi, rng.uniform(0, 100) / 7] for i in range(4500)
    ]
    rows[7][1:] = ["", ""]
    import_csv(world, write_csv(tmp_path / "a.csv", ["t", "x", "y"], rows), "dcm-a")
    import_csv(
        world,
        write_csv(tmp_path / "b.csv", ["t", "x", "y"], [[0, 1e-300, 12345.678901234567]]),
        "dcm-b",
        reader="bob",
    )
    with world.db.session() as session:
        first = session.scalars(select(ReadingSession).order_by(ReadingSession.id)).first()
        assert first is not None
        first.source = "webcam"
        first.source_info = {"validation": {"mean_px": 123.4, "mean_deg": 3.2}, "points": [1, 2]}
        box = {"x0": 1, "y0": 2, "x1": 3, "y1": 4}
        session.add(DiagnosisLabel(session_id=first.id, case_id=first.case_id, reader_id=first.reader_id,
                                   label="abnormal", confidence=0.75, finding_box=box))  # fmt: skip
    before = _stored_state(world)

    bundle = tmp_path / "bundle"
    with world.db.session() as session:
        manifest = export_gaze(session, bundle, dataset=world.dataset)
    assert manifest["columns"] == list(COLUMNS) and len(manifest["sessions"]) == 2
    entry = manifest["sessions"][0]
    assert (
        entry["case_external_id"] == "dcm-a"
        and entry["reader"] == "alice"
        and entry["label"]["label"] == "abnormal"
    )
    csv_header = (bundle / entry["files"]["csv"]).read_text().splitlines()[0]
    assert csv_header == ",".join(COLUMNS)
    doc = json.loads((bundle / entry["files"]["json"]).read_text())
    assert doc["columns"] == list(COLUMNS) and len(doc["samples"]) == 4500

    # Importing into a database that already holds the sessions changes nothing.
    with world.db.session() as session:
        again = import_gaze(session, ImportFormat.csv, bundle, dataset=world.dataset, reader=None)
    assert again.created == [] and len(again.skipped) == 2

    with world.db.session() as session:
        session.execute(delete(DiagnosisLabel))
        session.execute(delete(GazeChunk))
        session.execute(delete(ReadingSession))
    with world.db.session() as session:
        report = import_gaze(
            session, ImportFormat.bundle, bundle / "manifest.json", dataset=world.dataset, reader=None
        )
    assert len(report.created) == 2
    assert _stored_state(world) == before

    # The JSON files alone carry the same samples.
    for item in manifest["sessions"]:
        item["files"].pop("csv")
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with world.db.session() as session:
        session.execute(delete(DiagnosisLabel))
        session.execute(delete(GazeChunk))
        session.execute(delete(ReadingSession))
    with world.db.session() as session:
        import_gaze(session, ImportFormat.bundle, bundle, dataset=world.dataset, reader=None)
    assert _stored_state(world) == before


def test_bundle_with_a_corrupted_file_imports_nothing(world: World, tmp_path: Path) -> None:
    import_csv(world, write_csv(tmp_path / "a.csv", ["t", "x", "y"], [[0, 1, 1], [5, 2, 2]]), "dcm-a")
    import_csv(world, write_csv(tmp_path / "b.csv", ["t", "x", "y"], [[0, 1, 1]]), "dcm-b")
    with world.db.session() as session:
        manifest = export_gaze(session, tmp_path / "out", dataset=world.dataset, json_files=False)
        session.execute(delete(GazeChunk))
        session.execute(delete(ReadingSession))
    path = tmp_path / "out" / manifest["sessions"][1]["files"]["csv"]
    path.write_text(path.read_text().replace("\n0,", "\n0,oops,", 1))
    with pytest.raises(ImportFailed) as failed, world.db.session() as session:
        import_gaze(session, ImportFormat.csv, tmp_path / "out", dataset=world.dataset, reader=None)
    assert any(e.line == 2 and e.path == path for e in failed.value.errors), failed.value.errors
    assert all_samples(world) == {}


def test_cli_import_and_export(
    world: World, tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MCGIP_DATABASE_URL", settings.resolved_database_url)
    monkeypatch.setenv("MCGIP_DATA_DIR", str(settings.data_dir))
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        bad = write_csv(tmp_path / "bad.csv", ["t", "x", "y"], [[0, 1, 1], [1, "?", 1]])
        command = [
            "import",
            "gaze",
            "--format",
            "csv",
            "--dataset",
            "cxr",
            "--reader",
            "alice",
            "--case",
            "dcm-a",
        ]
        result = runner.invoke(app, [*command, str(bad)])
        assert result.exit_code == 1 and "bad.csv:3: column x: '?' is not a number" in result.output
        good = write_csv(tmp_path / "good.csv", ["t", "x", "y"], [[0, 1, 1], [1, 2, 2]])
        result = runner.invoke(app, [*command, str(good)])
        assert result.exit_code == 0 and "imported 1 sessions (2 samples)" in result.output, result.output
        result = runner.invoke(app, ["export", "gaze", "--out", str(tmp_path / "x"), "--reader", "alice"])
        assert result.exit_code == 0 and "exported 1 sessions" in result.output, result.output
        manifest = json.loads((tmp_path / "x" / "manifest.json").read_text())
        assert manifest["sessions"][0]["status"] == SessionStatus.finished.value
        result = runner.invoke(app, ["export", "gaze", "--out", str(tmp_path / "x")])
        assert result.exit_code != 0 and "not empty" in result.output
    finally:
        get_settings.cache_clear()
