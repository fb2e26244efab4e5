"""Shared pieces of the job-running CLI commands: dataset lookup and following a job to its end."""

from __future__ import annotations

import time

import typer
from sqlalchemy import select

from server.cli.app import fail
from server.db import Database
from server.jobs.queue import TERMINAL_STATES
from server.models import Dataset, Job


def resolve_datasets(db: Database, name_or_id: str | None) -> list[Dataset]:
    """The dataset named (by name or id), or every dataset when None."""
    with db.session() as session:
        if name_or_id is None:
            return list(session.scalars(select(Dataset).order_by(Dataset.id)))
        stmt = select(Dataset).where(Dataset.name == name_or_id)
        if name_or_id.isdigit():
            stmt = select(Dataset).where((Dataset.id == int(name_or_id)) | (Dataset.name == name_or_id))
        found = session.scalar(stmt)
    if found is None:
        fail(f"dataset {name_or_id!r} not found")
    assert found is not None
    return [found]


def follow(db: Database, job_id: int, *, poll_s: float = 1.0) -> Job:
    """Print progress of a job another worker runs until it ends; returns the final row."""
    last = None
    while True:
        with db.session() as session:
            job = session.get(Job, job_id)
        assert job is not None
        line = (
            f"job {job.id} {job.state.value} {job.progress * 100:5.1f}% {job.progress_info.get('phase', '')}"
        )
        if line != last:
            typer.echo(line, err=True)
            last = line
        if job.state in TERMINAL_STATES:
            return job
        time.sleep(poll_s)
