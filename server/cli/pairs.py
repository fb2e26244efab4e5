"""``mcgip pairs recompute``: bring session features and the gaze pair graph up to date now."""

from __future__ import annotations

import json
from typing import Any

import typer

from server.cli.app import app, fail
from server.cli.jobs_common import follow, resolve_datasets
from server.db import Database
from server.jobs import queue
from server.jobs.kinds import FeaturesSpec, JobSpec, PairsSpec
from server.models import JobState
from server.settings import get_settings
from server.worker.runner import Worker

pairs_app = typer.Typer(help="Gaze pair graph.", no_args_is_help=True)
app.add_typer(pairs_app, name="pairs")


@pairs_app.command("recompute")
def recompute(
    dataset: str | None = typer.Option(None, "--dataset", help="Dataset name or id (default: all)."),
    metric: str | None = typer.Option(
        None, "--metric", help="moments, dhash, correlation, multimatch or tima."
    ),
    full: bool = typer.Option(False, "--full", help="Recompute every pair, not only new sessions."),
) -> None:
    """Compute missing session features, then mine pairs (as recorded jobs, run in this process)."""
    settings = get_settings()
    db = Database(settings.resolved_database_url)
    worker = Worker(settings, db=db)
    try:
        for ds in resolve_datasets(db, dataset):
            while True:  # a features job handles a batch of pending sessions at a time
                result = _run(db, worker, ds.name, FeaturesSpec(), ds.id)
                if not result or not result.get("sessions"):
                    break
            _run(db, worker, ds.name, PairsSpec(metric=metric or None, full=bool(full)), ds.id)
    finally:
        db.dispose()


def _run(db: Database, worker: Worker, name: str, spec: JobSpec, dataset_id: int) -> Any:
    kind = spec.kind
    job = queue.submit(db, spec, dataset_id=dataset_id)
    worker.run_job(job.id)  # here, unless a running worker took it first
    final = follow(db, job.id)
    if final.state != JobState.succeeded:
        fail(f"{kind} job {job.id} for dataset {name!r} {final.state.value}: {final.error}", code=1)
    typer.echo(json.dumps({"dataset": name, "job": job.id, "kind": kind, "result": final.result}))
    return final.result
