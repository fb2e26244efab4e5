"""``mcgip import dicomweb`` and ``mcgip export dicomweb``: PACS import and results jobs, run in the
foreground (docs/pacs.md)."""

from __future__ import annotations

import datetime as dt
import json

import typer
from pydantic import ValidationError

from server.cli.app import fail
from server.cli.gaze_io import export_app, import_app
from server.cli.jobs_common import follow, resolve_datasets
from server.db import Database
from server.jobs import queue
from server.jobs.kinds import PacsImportSpec, PacsResultsSpec
from server.models import JobState
from server.settings import Settings, get_settings
from server.worker.runner import Worker


def _date(text: str | None, option: str) -> dt.date | None:
    if text is None:
        return None
    for fmt in ("%Y-%m-%d", "%Y%m%d"):
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    fail(f"{option} {text!r} is not a date (YYYY-MM-DD)")
    return None


@import_app.command("dicomweb")
def import_dicomweb(
    dataset: str = typer.Option(..., "--dataset", help="Dataset (name or id) the cases go into."),
    url: str | None = typer.Option(None, "--url", help="DICOMweb base URL (default: MCGIP_PACS_URL)."),
    study: list[str] = typer.Option([], "--study", help="StudyInstanceUID to import (repeatable)."),
    modality: str | None = typer.Option(None, "--modality", help="Only series of this modality, e.g. CT."),
    date_from: str | None = typer.Option(None, "--date-from", help="Studies on or after (YYYY-MM-DD)."),
    date_to: str | None = typer.Option(None, "--date-to", help="Studies on or before (YYYY-MM-DD)."),
    description: str | None = typer.Option(
        None, "--study-description", help="QIDO match on StudyDescription (* and ? wildcards)."
    ),
) -> None:
    """Import matching studies from a PACS over DICOMweb, de-identified, as cases of a dataset.

    Credentials come from MCGIP_PACS_USERNAME/MCGIP_PACS_PASSWORD or MCGIP_PACS_TOKEN. Instances
    imported before (into the same dataset) are skipped, so re-running resumes an interrupted import.
    """
    try:
        spec = PacsImportSpec(
            url=url,
            study_uids=study,
            modality=modality,
            date_from=_date(date_from, "--date-from"),
            date_to=_date(date_to, "--date-to"),
            study_description=description,
        )
    except ValidationError as exc:
        fail("; ".join(f"{'.'.join(map(str, e['loc'])) or 'query'}: {e['msg']}" for e in exc.errors()))
        return
    settings = get_settings()
    if spec.url is None and settings.pacs_url is None:
        fail("give --url or set MCGIP_PACS_URL")
    db = Database(settings.resolved_database_url)
    try:
        target = resolve_datasets(db, dataset)[0]
        _run(db, settings, spec, target.id, target.name)
    finally:
        db.dispose()


def _run(
    db: Database, settings: Settings, spec: PacsImportSpec | PacsResultsSpec, dataset_id: int, name: str
) -> None:
    job = queue.submit(db, spec, dataset_id=dataset_id)
    typer.echo(f"{spec.kind} job {job.id} queued for dataset {name!r}", err=True)
    Worker(settings, db=db).run_job(job.id)  # runs here unless a worker already took it
    final = follow(db, job.id)
    if final.state != JobState.succeeded:
        fail(f"job {job.id} {final.state.value}: {final.error}", code=1)
    typer.echo(json.dumps(final.result))


@export_app.command("dicomweb")
def export_dicomweb(
    dataset: str = typer.Option(..., "--dataset", help="Dataset (name or id) whose results to send."),
) -> None:
    """Send reader diagnoses of PACS-imported cases back to their PACS as DICOM SR (STOW-RS).

    The dataset must allow it (settings.pacs_results.enabled); reports already sent with the same
    content are not sent again.
    """
    settings = get_settings()
    db = Database(settings.resolved_database_url)
    try:
        target = resolve_datasets(db, dataset)[0]
        _run(db, settings, PacsResultsSpec(), target.id, target.name)
    finally:
        db.dispose()
