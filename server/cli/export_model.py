"""``mcgip export model``: copy a registered model's export file out, checked against its checksum."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import typer
from sqlalchemy import select

from server import audit
from server.cli.app import fail
from server.cli.gaze_io import export_app
from server.db import Database
from server.models import ModelVersion
from server.registry.artifacts import EXPORT_FILES
from server.registry.exports import ArtifactMissing, ChecksumMismatch, verified_artifact
from server.settings import get_settings
from server.storage import BlobStore

SUFFIX = {"onnx": ".onnx", "torchscript": ".pt", "safetensors": ".safetensors"}


@export_app.command("model")
def export_model(
    fmt: str = typer.Option(..., "--format", help="onnx, torchscript or safetensors."),
    model: int | None = typer.Option(None, "--model", help="Model version id (default: the active one)."),
    out: Path | None = typer.Option(
        None, "--out", help="Output file (default: ./mcgip-d<D>-v<N>-<format>.<ext>)."
    ),
) -> None:
    """Write the export to ``--out`` and print its path and sha256 (JSON)."""
    if fmt not in EXPORT_FILES:
        fail(f"--format must be one of {', '.join(EXPORT_FILES)}")
    settings = get_settings()
    db = Database(settings.resolved_database_url)
    try:
        with db.session() as session:
            if model is not None:
                version = session.get(ModelVersion, model)
            else:
                active = session.scalars(select(ModelVersion).where(ModelVersion.is_active.is_(True))).all()
                if len(active) > 1:
                    fail(f"{len(active)} datasets have an active model; choose one with --model")
                version = active[0] if active else None
            if version is None:
                fail("model not found" if model is not None else "no active model; pass --model")
            assert version is not None
            try:
                source, digest = verified_artifact(BlobStore(settings.blob_dir), version, EXPORT_FILES[fmt])
            except ArtifactMissing as exc:
                fail(str(exc.detail))
            except ChecksumMismatch as exc:
                fail(str(exc.detail), code=1)
            target = out or Path(f"mcgip-d{version.dataset_id}-v{version.version}-{fmt}{SUFFIX[fmt]}")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            audit.record(
                session,
                "model_export",
                user_id=None,
                target_type="model",
                target_id=version.id,
                detail={"format": fmt, "sha256": digest, "via": "cli"},
            )
            typer.echo(
                json.dumps({"model": version.id, "format": fmt, "path": str(target), "sha256": digest})
            )
    finally:
        db.dispose()
