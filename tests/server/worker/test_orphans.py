"""The orphan check used after worker crashes reports files no row accounts for."""

from __future__ import annotations

from server.db import Database
from server.jobs import queue
from server.jobs.kinds import PairsSpec
from server.settings import Settings
from tests.conftest import Users
from tests.server.worker.orphans import orphaned_files


def test_files_without_an_owning_row_are_reported(db: Database, settings: Settings, users: Users) -> None:
    job = queue.submit(db, PairsSpec(), dataset_id=None)
    blobs = settings.blob_dir
    for rel in (f"jobs/{job.id}/state.json", f"jobs/{job.id}/state.json.tmp", "models/job-999/encoder.pt"):
        (blobs / rel).parent.mkdir(parents=True, exist_ok=True)
        (blobs / rel).write_bytes(b"x")
    assert orphaned_files(db, blobs) == [f"jobs/{job.id}/state.json.tmp", "models/job-999/encoder.pt"]
