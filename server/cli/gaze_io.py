"""``mcgip import gaze`` and ``mcgip export gaze``: gaze data interchange (docs/gaze-interchange.md)."""

from __future__ import annotations

from pathlib import Path

import typer

from server.cli.app import app, fail
from server.db import Database
from server.interchange import reflacx
from server.interchange.images import CaseSource
from server.interchange.importer import ImportReport
from server.interchange.records import ImportFailed
from server.interchange.service import ImportFormat, ImportOptions, export_gaze, import_gaze
from server.settings import get_settings
from server.storage import BlobStore

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
    intensity_scale: float | None = typer.Option(
        None, "--intensity-scale", help="REFLACX window units -> modality (default 2^bits of the image)."
    ),
    not_eye_gaze: bool = typer.Option(False, "--not-eye-gaze", help="Plain CSV points are not eye gaze."),
    raw_gaze: bool = typer.Option(
        False, "--raw-gaze", help="EGD-CXR eye_gaze.csv / REFLACX gaze_data/ instead of fixations."
    ),
    label_map: list[str] = typer.Option(
        [], "--label-map", help="EGD-CXR condition column -> reference label, COLUMN=LABEL (repeatable)."
    ),
    threshold: float = typer.Option(
        reflacx.DEFAULT_THRESHOLD, "--threshold", help="REFLACX certainty counted as present (3 = Possibly)."
    ),
    positive_label: str = typer.Option("abnormal", "--positive-label", help="REFLACX: some abnormality."),
    negative_label: str = typer.Option("normal", "--negative-label", help="REFLACX: no abnormality."),
    strict_cases: bool = typer.Option(
        False, "--strict-cases", help="An image without a case fails the import (default: skip, list)."
    ),
    images: Path | None = typer.Option(None, "--images", help="Folder with the data set's DICOM/JPEG files."),
    create_cases: bool = typer.Option(
        False, "--create-cases", help="Create missing cases from --images (upload path, de-identified)."
    ),
) -> None:
    """Import gaze into reading sessions; all of it or, on any problem, none of it."""
    mapping = {}
    for item in label_map:
        column, sep, label = item.partition("=")
        if not sep or not column or not label:
            fail(f"--label-map {item!r}: expected COLUMN=LABEL")
            return
        mapping[column] = label
    options = ImportOptions(
        case=case,
        master_sheet=master_sheet,
        fixation_hz=fixation_hz,
        intensity_scale=intensity_scale,
        eye_gaze=not not_eye_gaze,
        raw_gaze=raw_gaze,
        label_map=mapping,
        diagnosis=reflacx.DiagnosisRule(threshold, positive_label, negative_label),
        strict_cases=strict_cases,
        images=images,
        create_cases=create_cases,
    )
    settings = get_settings()
    source = CaseSource(BlobStore(settings.blob_dir), settings.max_image_pixels, settings.uid_salt)
    db = Database(settings.resolved_database_url)
    try:
        with db.session() as session:
            report = import_gaze(
                session, fmt, path, dataset=dataset, reader=reader, options=options, case_source=source
            )
    except ImportFailed as exc:
        fail(str(exc), code=1)
        return
    except (LookupError, ValueError) as exc:
        fail(str(exc))
        return
    finally:
        db.dispose()
    for line in report_lines(report):
        typer.echo(line)


def report_lines(report: ImportReport) -> list[str]:
    """The import report as printed by the CLI."""
    lines = [f"imported {len(report.created)} sessions ({report.samples} samples)"]
    if report.events:
        lines.append(f"stored {report.events} transcript events")
    if report.skipped:
        lines.append(f"skipped {len(report.skipped)} sessions imported before")
    if report.readers_created:
        lines.append(f"created {len(report.readers_created)} pseudonymous readers")
    if report.labels_set:
        lines.append(f"labelled {report.labels_set} cases")
    lines += [f"label conflict {ref}: {why}" for ref, why in sorted(report.label_conflicts.items())]
    if report.annotations:
        lines.append(f"stored {report.annotations} annotations")
    lines += [f"annotation skipped {ref}: {why}" for ref, why in sorted(report.annotations_skipped.items())]
    if report.ignored:
        lines.append(
            f"ignored {len(report.ignored)} ids the data set marks as not images (calibration screens)"
        )
    if report.missing_cases:
        lines.append(f"skipped {len(report.missing_cases)} images without a case in the dataset:")
        lines += [f"  {ref} ({where})" for ref, where in sorted(report.missing_cases.items())]
    return lines


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
