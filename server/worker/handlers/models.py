"""Jobs on an existing model version: ``embed`` (case embeddings), ``export`` (verify/re-create an
export file) and ``evaluate`` (metrics of versions on a fresh snapshot)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select

from server.cases.service import PIXELS_FILE
from server.datasets.snapshot import build_snapshot
from server.exceptions import DomainError
from server.jobs.kinds import EmbedSpec, EvaluateSpec, ExportSpec
from server.models import Case, CaseEmbedding, ModelVersion, StoredImage
from server.registry import embedding
from server.registry.artifacts import ENCODER_FILE, EXPORT_FILES
from server.registry.exports import verified_artifact
from server.worker.context import JobContext, PermanentError
from server.worker.handlers.retrain import export_missing, validated_config
from trainer.contract import EXIT_INVALID, EXIT_OK, EvaluateRequest

EMBED_BATCH = 32


def _version(ctx: JobContext, model_id: int) -> ModelVersion:
    with ctx.db.session() as session:
        version = session.get(ModelVersion, model_id)
        if version is None:
            raise PermanentError(f"model {model_id} not found")
        session.expunge(version)
        return version


def _verified(ctx: JobContext, version: ModelVersion, name: str) -> Path:
    try:
        return verified_artifact(ctx.blobs, version, name)[0]
    except DomainError as exc:
        raise PermanentError(str(exc.detail)) from None


def run_embed(ctx: JobContext, spec: EmbedSpec) -> dict[str, Any]:
    """Embed every case of the model's dataset with its ONNX export; replaces earlier embeddings."""
    version = _version(ctx, spec.model_id)
    onnx_path = _verified(ctx, version, EXPORT_FILES["onnx"])
    with ctx.db.session() as session:
        rows = session.execute(
            select(Case.id, StoredImage.storage_dir, StoredImage.invert, StoredImage.value_scale)
            .join(StoredImage, StoredImage.case_id == Case.id)
            .where(Case.dataset_id == version.dataset_id)
            .order_by(Case.id)
        ).all()
    vectors: list[tuple[int, bytes, int]] = []
    for start in range(0, len(rows), EMBED_BATCH):
        ctx.check()
        chunk = rows[start : start + EMBED_BATCH]
        decoded = [embedding.read_case_pixels(ctx.blobs.path(f"{d}/{PIXELS_FILE}")) for _, d, _, _ in chunk]
        feats = embedding.embed(
            onnx_path,
            [values for values, _ in decoded],
            inverts=[bool(inv) != (scale < 0) for _, _, inv, scale in chunk],
            full_scales=[full for _, full in decoded],
        )
        vectors += [
            (row[0], embedding.to_bytes(f), int(f.shape[0])) for row, f in zip(chunk, feats, strict=True)
        ]
        ctx.report(0.95 * (start + len(chunk)) / max(1, len(rows)), phase="embed", cases=start + len(chunk))
    with ctx.db.session() as session:
        session.execute(delete(CaseEmbedding).where(CaseEmbedding.model_version_id == version.id))
        session.add_all(
            CaseEmbedding(model_version_id=version.id, case_id=case_id, vector=vec, dim=dim)
            for case_id, vec, dim in vectors
        )
    return {"model_version_id": version.id, "cases": len(vectors), "dim": vectors[0][2] if vectors else 0}


def run_export(ctx: JobContext, spec: ExportSpec) -> dict[str, Any]:
    """Check a version's export file; re-create it from encoder.pt when it is missing."""
    version = _version(ctx, spec.model_id)
    fmt = spec.format
    name = EXPORT_FILES[fmt]
    target = ctx.blobs.path(f"{version.artifact_dir}/{name}")
    regenerated = False
    if not target.exists():
        encoder = _verified(ctx, version, ENCODER_FILE)
        errors = export_missing(ctx, encoder, target.parent, formats=[fmt])
        if errors:
            raise RuntimeError(errors[fmt])  # retried: the trainer may have run out of memory
        regenerated = True
    try:
        digest = verified_artifact(ctx.blobs, version, name)[1]
    except DomainError as exc:
        raise PermanentError(str(exc.detail)) from None
    return {"model_version_id": version.id, "format": fmt, "sha256": digest, "regenerated": regenerated}


def run_evaluate(ctx: JobContext, spec: EvaluateSpec) -> dict[str, Any]:
    """Evaluate model versions side by side on a fresh snapshot of their dataset (metrics in the result)."""
    versions = [_version(ctx, m) for m in spec.model_ids]  # the spec holds at least one
    datasets = {v.dataset_id for v in versions}
    if len(datasets) != 1:
        raise PermanentError("all models of an evaluation must belong to one dataset")
    config = validated_config(spec.config)
    manifest = ctx.job_dir / "snapshot.json"
    with ctx.db.session() as session:
        summary = build_snapshot(session, ctx.blobs, datasets.pop(), manifest)
    config_path = ctx.job_dir / "config.json"
    config_path.write_text(json.dumps(config), encoding="utf-8")
    out = ctx.job_dir / "metrics.json"
    request = EvaluateRequest(
        snapshot=manifest,
        encoders={f"v{v.version}": _verified(ctx, v, ENCODER_FILE) for v in versions},
        config=config_path,
        out=out,
    )
    ctx.report(0.1, phase="evaluate", snapshot=summary["counts"])
    code = ctx.run_process(ctx.options.trainer_command(sys.executable) + request.args())
    if code == EXIT_INVALID:
        raise PermanentError("the trainer rejected the evaluation (see the log tail)")
    if code != EXIT_OK or not out.exists():
        raise RuntimeError(f"evaluation exited with status {code}")
    metrics = json.loads(out.read_text(encoding="utf-8"))
    return {"models": [v.id for v in versions], "snapshot": summary["counts"], "metrics": metrics}
