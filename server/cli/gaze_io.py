"""``mcgip import gaze`` and ``mcgip export gaze``: gaze data interchange (docs/gaze-interchange.md)."""

from __future__ import annotations

from pathlib import Path

import typer

from server.cli.app import app, fail
from server.db import Database
from server.interchange.records import ImportFailed
from server.interchange.service import ImportFormat, ImportOptions, export_gaze, import_gaze
from server.settings import get_settings

import_app = typer.Typer(help="Import data.", no_args_is_help=True)
export_app = typer.Typer(help="Export data.", no_args_is_help=True)
app.add_typer(import_app, name="import")
app.add_typer(export_app, name="export")


@import_app.command("gaze")
def import_gaze_command(
    path: Path = typer.Argument(..., help="File or folder to import."),
    fmt: ImportFormat = typer.Option(..., "--format", help="egd-cxr, reflacx, csv (also bundles) or bundle."),
    dataset: str = typer.Option(
        ..., "--dataset", help="Dataset (name or id) whose cases the gaze belongs to."
    ),
    reader: str | None = typer.Option(
        None, "--reader", help="Username of the reader (required unless a bundle names them)."
    ),
    case: str | None = typer.Option(None, "--case", help="External id of the case (plain CSV)."),
    master_sheet: Path | None = typer.Option(None, "--master-sheet", help="EGD-CXR master_sheet.csv."),
    fixation_hz: float = typer.Option(
        60.0, "--fixation-hz", min=1.0, help="Samples per second for fixations."
    ),
    intensity_scale: float = typer.Option(
        4096.0, "--intensity-scale", help="REFLACX window units -> modality."
    ),
    not_eye_gaze: bool = typer.Option(False, "--not-eye-gaze", help="Plain CSV points are not eye gaze."),
) -> None:
    """Import gaze into reading sessions; all of it or, on any problem, none of it."""
    options = ImportOptions(
        case=case,
        master_sheet=master_sheet,
        fixation_hz=fixation_hz,
        intensity_scale=intensity_scale,
        eye_gaze=not not_eye_gaze,
    )
    db = Database(get_settings().resolved_database_url)
    try:
        with db.session() as session:
            report = import_gaze(session, fmt, path, dataset=dataset, reader=reader, options=options)
    except ImportFailed as exc:
        fail(str(exc), code=1)
        return
    except LookupError as exc:
        fail(str(exc))
        return
    finally:
        db.dispose()
    typer.echo(f"imported {len(report.created)} sessions ({report.samples} samples)")
    if report.skipped:
        typer.echo(f"skipped {len(report.skipped)} sessions imported before")


@export_app.command("gaze")
def export_gaze_command(
    out: Path = typer.Option(..., "--out", help="Bundle folder to create (must be empty or absent)."),
    dataset: str | None = typer.Option(None, "--dataset", help="Only this dataset (name or id)."),
    reader: str | None = typer.Option(None, "--reader", help="Only this reader (username)."),
    session_ids: list[int] = typer.Option([], "--session", help="Only these session ids (repeatable)."),
    csv: bool = typer.Option(True, "--csv/--no-csv", help="Write a CSV per session."),
    json_files: bool = typer.Option(True, "--json/--no-json", help="Write a JSON per session."),
) -> None:
    """Export reading sessions' gaze as a bundle: manifest.json + sessions/session-<id>.csv/.json."""
    db = Database(get_settings().resolved_database_url)
    try:
        with db.session() as session:
            manifest = export_gaze(
                session,
                out,
                dataset=dataset,
                reader=reader,
                session_ids=session_ids,
                csv=csv,
                json_files=json_files,
            )
    except (LookupError, FileExistsError, ValueError) as exc:
        fail(str(exc))
        return
    finally:
        db.dispose()
    typer.echo(f"exported {len(manifest['sessions'])} sessions to {out}")
