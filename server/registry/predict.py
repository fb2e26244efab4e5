"""Diagnosis predictions with a model version's ONNX export (``probabilities`` output), no torch.

The route resolves the version and the images (database and blob reads), then hands decoding,
preprocessing (``trainer.imaging``, the trainer's own function) and the onnxruntime call to the
bounded ``PredictPool`` so the event loop never waits on them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from server.cases.service import PIXELS_FILE, visible_case
from server.exceptions import Conflict, Invalid, NotFound
from server.imaging.detect import ImageFormat, detect_format
from server.imaging.dicom_image import decode_first_frame, read_dataset
from server.imaging.raster import decode_raster
from server.models import Case, ModelVersion, User
from server.registry import embedding, versions
from server.registry.artifacts import EXPORT_FILES, HEAD_FILE
from server.storage import BlobStore
from trainer.diagnosis.card import NOT_FOR_CLINICAL_USE, calibration_note

PROBABILITIES = "probabilities"


@dataclass
class PredictInput:
    """One image to score: a stored case (read in the pool) or decoded upload values."""

    case_id: int | None = None
    pixels_path: Path | None = None
    invert: bool = False
    upload: bytes | None = None
    filename: str | None = None


@dataclass(frozen=True)
class ReadyModel:
    """A version that can predict: its ONNX file, label names and calibration note."""

    version: ModelVersion
    onnx_path: Path
    classes: tuple[str, ...]
    calibration: str


def resolve_version(session: Session, ref: str, dataset_id: int | None) -> ModelVersion:
    """``ref`` is a model id or ``active`` (the active version of ``dataset_id``); ``NotFound`` otherwise."""
    if ref == "active":
        if dataset_id is None:
            raise Invalid("the active model depends on the dataset: send case_id(s) or a dataset_id")
        active = versions.active_version(session, dataset_id)
        if active is None:
            raise NotFound(f"dataset {dataset_id} has no active model")
        return active
    if not ref.isdigit() or len(ref) > 18:
        raise NotFound(f"model {ref!r} not found (an id or 'active')")
    return versions.get_version(session, int(ref))


def no_head_reason(version: ModelVersion) -> str:
    """Why a version has no diagnosis head, from its training report."""
    report = (version.metrics or {}).get("diagnosis") or {}
    problems = report.get("problems") or []
    if problems:
        return "; ".join(str(p) for p in problems)
    return "it was trained without a diagnosis head; retrain it to fit one"


def ready_model(blobs: BlobStore, version: ModelVersion) -> ReadyModel:
    """The version's ONNX export with a ``probabilities`` output, or ``Conflict`` saying why not."""
    head_path = blobs.path(f"{version.artifact_dir}/{HEAD_FILE}")
    if not head_path.exists():
        raise Conflict(f"model {version.id} has no diagnosis head: {no_head_reason(version)}")
    onnx_path = blobs.path(f"{version.artifact_dir}/{EXPORT_FILES['onnx']}")
    if not onnx_path.exists() or PROBABILITIES not in embedding.output_names(onnx_path):
        raise Conflict(
            f"model {version.id} has a diagnosis head but no ONNX export with probabilities; "
            "queue an export job (format onnx) to re-create it",
        )
    meta = embedding.session_for(onnx_path).get_modelmeta().custom_metadata_map
    classes = tuple(json.loads(meta.get("mcgip.classes", "[]")))
    head = json.loads(head_path.read_text(encoding="utf-8"))
    calibration = dict(head.get("info", {}).get("calibration", {}))
    cv = ((version.metrics or {}).get("diagnosis") or {}).get("heads", {})
    run = "mcgip" if (version.config or {}).get("gaze", {}).get("enabled", True) else "baseline"
    calibration.update((cv.get(run) or {}).get("calibration", {}))
    return ReadyModel(version, onnx_path, classes, calibration_note(calibration))


def case_inputs(session: Session, blobs: BlobStore, user: User, case_ids: list[int]) -> list[PredictInput]:
    """Stored cases the caller may see (readers: their worklist only; others are ``NotFound``)."""
    out = []
    for case_id in case_ids:
        case: Case = visible_case(session, user, case_id)
        if case.image is None:
            raise NotFound(f"case {case_id} has no stored image")
        out.append(
            PredictInput(
                case_id=case_id,
                pixels_path=blobs.path(f"{case.image.storage_dir}/{PIXELS_FILE}"),
                invert=embedding.shown_inverted(case.image),
            )
        )
    return out


def _decode_upload(data: bytes, max_pixels: int) -> tuple[np.ndarray, bool]:
    """Stored values and shown-inverted flag of an uploaded PNG/JPEG/DICOM (ImagingError on failure)."""
    fmt = detect_format(data)
    if fmt is ImageFormat.DICOM:
        decoded = decode_first_frame(read_dataset(data), max_pixels=max_pixels)
    else:
        decoded = decode_raster(data, fmt, max_pixels=max_pixels)
    return np.asarray(decoded.values, dtype=np.float64), bool(decoded.invert) != (decoded.slope < 0)


def run_predictions(model: ReadyModel, items: list[PredictInput], max_pixels: int) -> list[dict[str, Any]]:
    """Decode, preprocess and score (runs in the pool). Raises ``ImagingError`` for a bad upload."""
    spec = embedding.preprocess_spec(model.onnx_path)
    values: list[np.ndarray] = []
    inverts: list[bool] = []
    scales: list[float | None] = []
    for item in items:
        if item.upload is not None:
            pixels, invert = _decode_upload(item.upload, max_pixels)
            values.append(pixels)
            inverts.append(invert)
            scales.append(None)
        else:
            assert item.pixels_path is not None
            pixels32, full = embedding.read_case_pixels(item.pixels_path)
            values.append(pixels32)
            inverts.append(item.invert)
            scales.append(full)
    batch = embedding.prepare_batch(spec, values, inverts=inverts, full_scales=scales)
    probs = embedding.run_outputs(model.onnx_path, batch, [PROBABILITIES])[0]
    out = []
    for item, row in zip(items, probs, strict=True):
        entry: dict[str, Any] = {
            "probabilities": {name: float(p) for name, p in zip(model.classes, row, strict=True)},
            "label": model.classes[int(np.argmax(row))],
        }
        if item.case_id is not None:
            entry["case_id"] = item.case_id
        if item.filename is not None:
            entry["filename"] = item.filename
        out.append(entry)
    return out


def response(model: ReadyModel, predictions: list[dict[str, Any]], *, batch: bool) -> dict[str, Any]:
    """The API answer: one prediction at the top level, or ``predictions`` for a batch."""
    common = {
        "model_version": model.version.id,
        "version": model.version.version,
        "dataset_id": model.version.dataset_id,
        "calibration": model.calibration,
        "clinical_use": NOT_FOR_CLINICAL_USE,
    }
    if batch:
        return {**common, "predictions": predictions}
    return {**predictions[0], **common}
