"""Every file in the blob store belongs to a row that still exists: nothing is orphaned."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from server.db import Database
from server.models import Job, ModelVersion, StoredImage


def orphaned_files(db: Database, blob_dir: Path) -> list[str]:
    """Blob-relative paths no case image, model version or job accounts for.

    A model version's folder may hold only the files its checksums list (a partial export left by
    a killed attempt would be an orphan); a job's folder only complete files (no ``*.tmp``).
    """
    with db.session() as session:
        images = set(session.scalars(select(StoredImage.storage_dir)))
        versions = {v.artifact_dir: set(v.checksums) for v in session.scalars(select(ModelVersion))}
        jobs = {f"jobs/{job_id}" for job_id in session.scalars(select(Job.id))}
    orphans = []
    for path in sorted(p for p in blob_dir.rglob("*") if p.is_file()):
        rel = path.relative_to(blob_dir).as_posix()
        if any(rel.startswith(f"{folder}/") for folder in images):
            continue
        owner = next((folder for folder in versions if rel.startswith(f"{folder}/")), None)
        if owner is not None and path.relative_to(blob_dir / owner).as_posix() in versions[owner]:
            continue
        if any(rel.startswith(f"{folder}/") for folder in jobs) and not rel.endswith(".tmp"):
            continue
        orphans.append(rel)
    return orphans
