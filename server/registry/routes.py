"""HTTP routes of the model registry: versions, cards, exports, promotion, embeddings, similar cases."""

from __future__ import annotations

import io
import json
import threading
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, HTTPException, Query, Request, UploadFile, status
from fastapi.responses import FileResponse
from PIL import Image, UnidentifiedImageError
from sqlalchemy import select

from server import audit
from server.apitypes import Id
from server.auth.scopes import require_scope
from server.cases.service import PIXELS_FILE, visible_case
from server.deps import AdminUser, ContextDep, CurrentUser, PrincipalDep, SessionDep
from server.jobs import queue
from server.jobs.kinds import EmbedSpec
from server.jobs.queue import as_utc
from server.models import ModelVersion
from server.registry import embedding, versions
from server.registry.artifacts import CARD_FILE, EXPORT_FILES, sha256_file
from server.registry.exports import verified_artifact
from server.registry.schemas import EmbeddingPublic, ModelPublic, SimilarPublic
from server.registry.similar import similar_cases
from server.storage import BlobStore
from trainer.imaging import read_values

router = APIRouter(prefix="/api", tags=["models"])

_VERIFIED: dict[tuple[str, int, int], str] = {}
_VERIFIED_LOCK = threading.Lock()


def model_public(version: ModelVersion, blobs: BlobStore) -> ModelPublic:
    public = ModelPublic.model_validate(version)
    exports = [fmt for fmt, name in EXPORT_FILES.items() if blobs.exists(f"{version.artifact_dir}/{name}")]
    return public.model_copy(
        update={
            "exports": exports,
            "created_at": as_utc(public.created_at),
            "promoted_at": as_utc(public.promoted_at),
        }
    )


def _file_sha256(path: Path) -> str:
    """sha256 of an artifact, cached per (path, size, mtime) so repeated downloads do not rehash."""
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    with _VERIFIED_LOCK:
        if key in _VERIFIED:
            return _VERIFIED[key]
    digest = sha256_file(path)
    with _VERIFIED_LOCK:
        _VERIFIED[key] = digest
    return digest


@router.get("/models", response_model=list[ModelPublic], dependencies=[require_scope("read")])
def list_models(
    ctx: ContextDep, session: SessionDep, _user: CurrentUser, dataset_id: Id | None = None
) -> list[ModelPublic]:
    """Newest first."""
    stmt = select(ModelVersion).order_by(ModelVersion.id.desc())
    if dataset_id is not None:
        stmt = stmt.where(ModelVersion.dataset_id == dataset_id)
    blobs = BlobStore(ctx.settings.blob_dir)
    return [model_public(v, blobs) for v in session.scalars(stmt)]


@router.get("/models/{model_id}", response_model=ModelPublic, dependencies=[require_scope("read")])
def get_model(model_id: Id, ctx: ContextDep, session: SessionDep, _user: CurrentUser) -> ModelPublic:
    return model_public(versions.get_version(session, model_id), BlobStore(ctx.settings.blob_dir))


@router.get("/models/{model_id}/card", dependencies=[require_scope("read")])
def get_model_card(model_id: Id, ctx: ContextDep, session: SessionDep, _user: CurrentUser) -> dict[str, Any]:
    """The trainer's model card plus the registry's view (version, lineage, active flag, checksums)."""
    version = versions.get_version(session, model_id)
    blobs = BlobStore(ctx.settings.blob_dir)
    card_path = f"{version.artifact_dir}/{CARD_FILE}"
    card = json.loads(blobs.read(card_path)) if blobs.exists(card_path) else {}
    return {
        **card,
        "registry": {
            "id": version.id,
            "dataset_id": version.dataset_id,
            "version": version.version,
            "job_id": version.job_id,
            "parent_id": version.parent_id,
            "is_active": version.is_active,
            "created_at": as_utc(version.created_at),
            "promoted_at": as_utc(version.promoted_at),
            "snapshot": version.snapshot,
            "checksums": version.checksums,
        },
    }


@router.get("/models/{model_id}/evaluation", dependencies=[require_scope("read")])
def get_model_evaluation(model_id: Id, session: SessionDep, _user: CurrentUser) -> dict[str, Any]:
    """The version's cross-validated evaluation (docs/evaluation.md): per condition and metric
    ``{"value", "ci_low", "ci_high"}``, paired differences to the baseline with ``p_value``,
    ``n_cases``, ``n_folds``, ``verdict``; ``status`` "insufficient_labels" names what is missing."""
    version = versions.get_version(session, model_id)
    evaluation = (version.metrics or {}).get("evaluation")
    if not isinstance(evaluation, dict):
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"model {model_id} has no cross-validated evaluation; retrain to get one",
        )
    return {
        "model_id": version.id,
        "dataset_id": version.dataset_id,
        "version": version.version,
        **evaluation,
        "labels": evaluation.get("labels") or (version.snapshot or {}).get("labels", {}),
    }


@router.get("/models/{model_id}/export", response_class=FileResponse, dependencies=[require_scope("export")])
def export_model(
    model_id: Id,
    request: Request,
    ctx: ContextDep,
    session: SessionDep,
    principal: PrincipalDep,
    format: Annotated[Literal["onnx", "torchscript", "safetensors"], Query()],
) -> FileResponse:
    """Stream an export (the ``export`` scope, which only admins hold); sha256 in ``X-Checksum-SHA256``."""
    version = versions.get_version(session, model_id)
    path, digest = verified_artifact(
        BlobStore(ctx.settings.blob_dir), version, EXPORT_FILES[format], digest_of=_file_sha256
    )
    audit.record(
        session,
        "model_export",
        user_id=principal.user.id,
        request=request,
        target_type="model",
        target_id=model_id,
        detail={"format": format, "sha256": digest},
    )
    session.commit()  # the audit row is written before the first byte leaves
    suffix = {"onnx": ".onnx", "torchscript": ".pt", "safetensors": ".safetensors"}[format]
    return FileResponse(
        path,
        media_type="application/octet-stream",
        filename=f"mcgip-d{version.dataset_id}-v{version.version}-{format}{suffix}",
        headers={"X-Checksum-SHA256": digest},
    )


@router.post("/models/{model_id}/promote", response_model=ModelPublic, dependencies=[require_scope("write")])
def promote_model(
    model_id: Id, request: Request, ctx: ContextDep, session: SessionDep, admin: AdminUser
) -> ModelPublic:
    """Make this version the active one of its dataset (promoting an older version rolls back), then
    queue the embedding of the dataset's cases with it for similar-case retrieval."""
    version = versions.get_version(session, model_id)
    previous = versions.active_version(session, version.dataset_id)
    versions.promote(session, version)
    audit.record(
        session,
        "model_promote",
        user_id=admin.id,
        request=request,
        target_type="model",
        target_id=model_id,
        detail={"previous": previous.id if previous else None},
    )
    session.commit()
    queue.submit(
        ctx.db,
        EmbedSpec(model_id=version.id),
        dataset_id=version.dataset_id,
        created_by_id=admin.id,
    )
    return model_public(version, BlobStore(ctx.settings.blob_dir))


@router.post(
    "/models/{model_id}/embed", response_model=EmbeddingPublic, dependencies=[require_scope("predict")]
)
def embed_image(
    model_id: Id,
    ctx: ContextDep,
    session: SessionDep,
    user: CurrentUser,
    file: Annotated[UploadFile | None, File(description="PNG or JPEG, 8 or 16 bit")] = None,
    case_id: Annotated[Id | None, Form()] = None,
) -> EmbeddingPublic:
    """Embed an uploaded image, or a stored case the caller may see, with this version's encoder.

    Runs the version's ONNX export with onnxruntime; the web process never imports torch.
    """
    version = versions.get_version(session, model_id)
    blobs = BlobStore(ctx.settings.blob_dir)
    onnx_path = blobs.path(f"{version.artifact_dir}/{EXPORT_FILES['onnx']}")
    if not onnx_path.exists():
        raise HTTPException(status.HTTP_409_CONFLICT, f"model {model_id} has no ONNX export to embed with")
    if (file is None) == (case_id is None):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "send exactly one of 'file' or 'case_id'")
    if case_id is not None:
        case = visible_case(session, user, case_id)
        if case.image is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"case {case_id} has no stored image")
        pixels, full = embedding.read_case_pixels(blobs.path(f"{case.image.storage_dir}/{PIXELS_FILE}"))
        invert = embedding.shown_inverted(case.image)
    else:
        assert file is not None
        data = file.file.read(ctx.settings.max_upload_bytes + 1)
        if len(data) > ctx.settings.max_upload_bytes:
            raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, "upload too large")
        pixels, full = _decode_upload(data, ctx.settings.max_image_pixels)
        invert = False
    vector = embedding.embed(onnx_path, [pixels], inverts=[invert], full_scales=[full])[0]
    return EmbeddingPublic(model_id=model_id, dim=int(vector.shape[0]), embedding=vector.tolist())


def _decode_upload(data: bytes, max_pixels: int) -> Any:
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.width * img.height > max_pixels:
                raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, "image has too many pixels")
        return read_values(data)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, f"not a readable PNG/JPEG image: {exc}"
        ) from None


@router.get("/cases/{case_id}/similar", response_model=SimilarPublic, dependencies=[require_scope("read")])
def get_similar_cases(
    case_id: Id, session: SessionDep, user: CurrentUser, k: Annotated[int, Query(ge=1, le=50)] = 5
) -> SimilarPublic:
    """Similar prior cases under the active model (labels only where the caller may see them)."""
    case = visible_case(session, user, case_id)
    return similar_cases(session, user, case, k)
