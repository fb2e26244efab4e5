"""``mcgip train --config FILE``: queue a retrain and run it in the foreground."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from server.cli.app import app, fail
from server.cli.jobs_common import follow, resolve_datasets
from server.db import Database
from server.jobs import queue
from server.jobs.kinds import RetrainSpec
from server.jobs.queue import RetrainAlreadyActive
from server.models import JobState
from server.settings import get_settings
from server.worker.runner import Worker
from trainer.config import ConfigError, TrainConfig


@app.command("train")
def train(
    config: Path = typer.Option(
        ..., "--config", exists=True, dir_okay=False, help="Training config (JSON/YAML)."
    ),
    dataset: str | None = typer.Option(
        None, "--dataset", help="Dataset name or id (needed if there are several)."
    ),
) -> None:
    """Snapshot the dataset, train (resumable), evaluate against the no-gaze baseline, register a version."""
    try:
        validated = TrainConfig.from_file(config).to_dict()
    except ConfigError as exc:
        fail(str(exc))
    settings = get_settings()
    db = Database(settings.resolved_database_url)
    try:
        datasets = resolve_datasets(db, dataset)
        if len(datasets) != 1:
            fail(f"{len(datasets)} datasets exist; choose one with --dataset")
        try:
            job = queue.submit(db, RetrainSpec(config=validated), dataset_id=datasets[0].id)
        except RetrainAlreadyActive as exc:
            fail(f"retrain job {exc.job.id} is already {exc.job.state.value} for this dataset", code=1)
        typer.echo(f"retrain job {job.id} queued for dataset {datasets[0].name!r}", err=True)
        Worker(settings, db=db).run_job(job.id)  # runs here unless a worker already took it
        final = follow(db, job.id)
        if final.state != JobState.succeeded:
            fail(f"job {job.id} {final.state.value}: {final.error}", code=1)
        typer.echo(json.dumps(final.result))
    finally:
        db.dispose()
