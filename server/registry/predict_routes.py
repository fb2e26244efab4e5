"""``POST /api/models/{version}/predict``: calibrated diagnosis probabilities for cases or uploads."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from server import audit
from server.apitypes import MAX_DB_INT
from server.auth.scopes import require_scope
from server.deps import ContextDep, CurrentUser, SessionDep
from server.models import Case
from server.registry import predict
from server.storage import BlobStore

router = APIRouter(prefix="/api", tags=["models"])

_PREDICTION_PROPERTIES: dict[str, Any] = {
    "probabilities": {"type": "object", "additionalProperties": {"type": "number"}},
    "label": {"type": "string"},
    "case_id": {"type": "integer"},
    "filename": {"type": "string"},
}
_PREDICTION = {"type": "object", "properties": _PREDICTION_PROPERTIES}
#: Ids share the bound of every other id the API accepts (server/apitypes.py).
_ID_SCHEMA = {"type": "integer", "minimum": 1, "maximum": MAX_DB_INT}
_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "description": "One stored case (`case_id`) or a batch (`case_ids`, up to "
                    "MCGIP_PREDICT_MAX_BATCH, default 16) the caller may see.",
                    "properties": {
                        "case_id": _ID_SCHEMA,
                        "case_ids": {"type": "array", "items": _ID_SCHEMA},
                    },
                }
            },
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "description": "Uploaded PNG/JPEG/DICOM image(s) (repeat `file` for a batch; "
                    "admins only), or a `case_id`. `dataset_id` picks the dataset for `active`.",
                    "properties": {
                        "file": {"type": "array", "items": {"type": "string", "format": "binary"}},
                        "case_id": _ID_SCHEMA,
                        "dataset_id": _ID_SCHEMA,
                    },
                }
            },
        },
    },
    "responses": {
        "200": {
            "description": "Calibrated class probabilities; a batch answers `predictions` (one per image).",
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            **_PREDICTION_PROPERTIES,
                            "model_version": {"type": "integer"},
                            "version": {"type": "integer"},
                            "dataset_id": {"type": "integer"},
                            "calibration": {"type": "string"},
                            "clinical_use": {"type": "string"},
                            "predictions": {"type": "array", "items": _PREDICTION},
                        },
                        "required": ["model_version", "calibration"],
                    }
                }
            },
        },
        "404": {"description": "unknown model version, or a case the caller may not see"},
        "409": {"description": "the version has no diagnosis head (the detail says why)"},
        "413": {"description": "an upload or image over the size limits"},
        "415": {"description": "an upload that is not PNG, JPEG or DICOM"},
        "422": {"description": "a malformed request or an unreadable image"},
        "503": {"description": "the prediction queue is full; retry after `Retry-After` seconds"},
    },
}

_MAX_ID = MAX_DB_INT


def _ids(raw: Any, name: str) -> list[int]:
    values = raw if isinstance(raw, list) else [raw]
    if not values or not all(
        isinstance(v, int) and not isinstance(v, bool) and 0 < v <= _MAX_ID for v in values
    ):
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, f"'{name}' must hold positive integer case ids"
        )
    return list(values)


async def _parse(
    request: Request, max_batch: int, max_bytes: int
) -> tuple[list[int], list[UploadFile], int | None, bool]:
    """(case ids, uploaded files, dataset id, answer as a batch) from a JSON or multipart body."""
    ctype = request.headers.get("content-type", "")
    dataset_id: int | None = None
    as_batch = False
    if ctype.startswith("multipart/form-data"):
        form = await request.form(max_files=max_batch + 1)
        files = [f for f in form.getlist("file") if isinstance(f, UploadFile)]
        case_ids = [
            int(v)
            for v in form.getlist("case_id")
            if isinstance(v, str) and v.isdigit() and len(v) < 16 and 0 < int(v) <= _MAX_ID
        ]
        if form.getlist("case_id") and not case_ids:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "'case_id' must be a positive integer")
        raw_ds = form.get("dataset_id") or request.query_params.get("dataset_id")
    elif ctype.startswith("application/json"):
        try:
            body = json.loads(await request.body())
        except ValueError:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "the body is not valid JSON") from None
        if not isinstance(body, dict) or not ({"case_id", "case_ids"} & set(body)):
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT, 'send {"case_id": N} or {"case_ids": [...]}'
            )
        unknown = set(body) - {"case_id", "case_ids", "dataset_id"}
        if unknown:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"unknown fields: {sorted(unknown)}")
        files = []
        if "case_id" in body and "case_ids" in body:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "send case_id or case_ids, not both")
        as_batch = "case_ids" in body
        case_ids = (
            _ids(body["case_id"], "case_id") if "case_id" in body else _ids(body["case_ids"], "case_ids")
        )
        raw_ds = body.get("dataset_id") or request.query_params.get("dataset_id")
    else:
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            "send application/json with case_id or multipart/form-data with file",
        )
    if raw_ds is not None:
        text = str(raw_ds)
        if not text.isdigit() or len(text) > 15 or not 0 < int(text) <= _MAX_ID:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT, "'dataset_id' must be a positive integer"
            )
        dataset_id = int(text)
    if bool(files) == bool(case_ids):
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "send either case id(s) or file(s), not both"
        )
    count = len(files) + len(case_ids)
    if count > max_batch:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, f"at most {max_batch} images per request (got {count})"
        )
    for f in files:
        if f.size is not None and f.size > max_bytes:
            raise HTTPException(
                status.HTTP_413_CONTENT_TOO_LARGE, f"upload {f.filename!r} is larger than {max_bytes} bytes"
            )
    return case_ids, files, dataset_id, as_batch or len(files) > 1 or len(case_ids) > 1


@router.post(
    "/models/{version}/predict",
    dependencies=[require_scope("predict")],
    openapi_extra=_OPENAPI,
    summary="Diagnosis probabilities from a model version (or `active`)",
)
async def predict_route(
    version: str, request: Request, ctx: ContextDep, session: SessionDep, user: CurrentUser
) -> JSONResponse:
    """Calibrated diagnosis probabilities for stored cases or uploaded images.

    `version` is a model id or `active` (the dataset's promoted version). Readers may predict only on
    cases on their worklist; uploads need an admin. Runs the version's ONNX export with onnxruntime
    in a bounded worker pool: when it is full the answer is 503 with `Retry-After`.
    NOT FOR CLINICAL USE.
    """
    settings = ctx.settings
    case_ids, files, dataset_id, as_batch = await _parse(
        request, settings.predict_max_batch, settings.max_upload_bytes
    )
    if files and not user.is_admin:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "readers may predict only on cases assigned to them: send case_id"
        )
    uploads = []
    for f in files:
        data = await f.read(settings.max_upload_bytes + 1)
        if len(data) > settings.max_upload_bytes:
            raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"upload {f.filename!r} is too large")
        uploads.append(predict.PredictInput(upload=data, filename=f.filename or "upload"))
    blobs = BlobStore(settings.blob_dir)

    def resolve() -> tuple[predict.ReadyModel, list[predict.PredictInput]]:
        ds = dataset_id
        if case_ids and version == "active":
            found = {c.dataset_id for c in (session.get(Case, cid) for cid in case_ids) if c is not None}
            ds = found.pop() if len(found) == 1 else ds
        model = predict.ready_model(blobs, predict.resolve_version(session, version, ds))
        items = predict.case_inputs(session, blobs, user, case_ids) if case_ids else uploads
        return model, items

    model, items = await run_in_threadpool(resolve)
    # A full pool (503 + Retry-After) and a bad upload (413/415/422) are domain errors.
    predictions = await predict.predict_in_pool(
        ctx.predict_pool,
        model,
        items,
        settings.max_image_pixels,
        tensors=ctx.predict_tensors,
        batcher=ctx.predict_batcher,
    )
    audit.record(
        session,
        "model_predict",
        user_id=user.id,
        request=request,
        target_type="model",
        target_id=model.version.id,
        detail={"cases": case_ids, "uploads": len(uploads)},
    )
    return JSONResponse(predict.response(model, predictions, batch=as_batch))
