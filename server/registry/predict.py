"""Diagnosis predictions with a model version's ONNX export (``probabilities`` output), no torch.

The route resolves the version and the images (database and blob reads), then hands decoding,
preprocessing (``trainer.imaging``, the trainer's own function) and the onnxruntime call to the
bounded ``PredictPool`` so the event loop never waits on them. Per request the work that does not
change is cached: the export's session and label metadata (keyed on the files' modification times),
each stored case's preprocessed input (``predict_cache.TensorCache``, keyed on its content hash and
the spec), and concurrent requests for one model share an onnxruntime run (``batcher.MicroBatcher``).
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
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
from server.models import Case, ModelVersion, StoredImage, User
from server.registry import embedding, versions
from server.registry.artifacts import EXPORT_FILES, HEAD_FILE
from server.registry.batcher import MicroBatcher
from server.registry.predict_cache import TensorCache, TensorKey
from server.storage import BlobStore
from trainer.diagnosis.card import NOT_FOR_CLINICAL_USE, calibration_note
from trainer.imaging import PreprocessSpec

PROBABILITIES = "probabilities"


@dataclass
class PredictInput:
    """One image to score: a stored case (read in the pool) or decoded upload values."""

    case_id: int | None = None
    pixels_path: Path | None = None
    invert: bool = False
    upload: bytes | None = None
    filename: str | None = None
    #: ``StoredImage.sha256`` of a stored case (the hash of ``pixels_path``): the tensor cache key.
    content_sha256: str | None = None


@dataclass(frozen=True)
class ExportInfo:
    """What an export's files say, read once per file version: labels, spec, head calibration."""

    classes: tuple[str, ...]
    spec: PreprocessSpec
    head_calibration: dict[str, Any]
    #: (onnx path, mtime_ns, size) of the export: the micro-batching key of this model.
    key: tuple[str, int, int]


@dataclass(frozen=True)
class ReadyModel:
    """A version that can predict: its ONNX file, label names, preprocessing and calibration note."""

    version: ModelVersion
    onnx_path: Path
    classes: tuple[str, ...]
    calibration: str
    spec: PreprocessSpec
    run_key: tuple[str, int, int]


_EXPORTS: OrderedDict[tuple[str, int, int, int, int], ExportInfo] = OrderedDict()
_EXPORTS_LOCK = threading.Lock()
_MAX_EXPORTS = 16


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
    info = export_info(onnx_path, head_path)
    if info is None:
        raise Conflict(
            f"model {version.id} has a diagnosis head but no ONNX export with probabilities; "
            "queue an export job (format onnx) to re-create it",
        )
    calibration = dict(info.head_calibration)
    cv = ((version.metrics or {}).get("diagnosis") or {}).get("heads", {})
    run = "mcgip" if (version.config or {}).get("gaze", {}).get("enabled", True) else "baseline"
    calibration.update((cv.get(run) or {}).get("calibration", {}))
    return ReadyModel(version, onnx_path, info.classes, calibration_note(calibration), info.spec, info.key)


def export_info(onnx_path: Path, head_path: Path) -> ExportInfo | None:
    """The export's label names, spec and head calibration; ``None`` without a probabilities output.

    Cached per (path, modification time, size) of both files, so a re-created export or head is
    read again and an unchanged one costs two ``stat`` calls.
    """
    try:
        onnx_stat, head_stat = onnx_path.stat(), head_path.stat()
    except FileNotFoundError:
        return None
    key = (str(onnx_path), onnx_stat.st_mtime_ns, onnx_stat.st_size, head_stat.st_mtime_ns, head_stat.st_size)
    with _EXPORTS_LOCK:
        if key in _EXPORTS:
            _EXPORTS.move_to_end(key)
            return _EXPORTS[key]
    if PROBABILITIES not in embedding.output_names(onnx_path):
        return None
    meta = embedding.session_for(onnx_path).get_modelmeta().custom_metadata_map
    head = json.loads(head_path.read_text(encoding="utf-8"))
    info = ExportInfo(
        classes=tuple(json.loads(meta.get("mcgip.classes", "[]"))),
        spec=embedding.preprocess_spec(onnx_path),
        head_calibration=dict(head.get("info", {}).get("calibration", {})),
        key=(str(onnx_path), onnx_stat.st_mtime_ns, onnx_stat.st_size),
    )
    with _EXPORTS_LOCK:
        _EXPORTS[key] = info
        while len(_EXPORTS) > _MAX_EXPORTS:
            _EXPORTS.popitem(last=False)
    return info


def case_inputs(session: Session, blobs: BlobStore, user: User, case_ids: list[int]) -> list[PredictInput]:
    """Stored cases the caller may see (readers: their worklist only; others are ``NotFound``)."""
    out = []
    for case_id in case_ids:
        case: Case = visible_case(session, user, case_id)
        if case.image is None:
            raise NotFound(f"case {case_id} has no stored image")
        out.append(stored_input(blobs, case_id, case.image))
    return out


def stored_input(blobs: BlobStore, case_id: int, image: StoredImage) -> PredictInput:
    """The input of a stored case's image, shown as the reader sees it (MONOCHROME1 or a negative
    rescale slope inverts): the one way every caller (predict API, PACS results) builds it."""
    return PredictInput(
        case_id=case_id,
        pixels_path=blobs.path(f"{image.storage_dir}/{PIXELS_FILE}"),
        invert=embedding.shown_inverted(image),
        content_sha256=image.sha256,
    )


def _decode_upload(data: bytes, max_pixels: int) -> tuple[np.ndarray, bool]:
    """Stored values and shown-inverted flag of an uploaded PNG/JPEG/DICOM (ImagingError on failure)."""
    fmt = detect_format(data)
    if fmt is ImageFormat.DICOM:
        decoded = decode_first_frame(read_dataset(data), max_pixels=max_pixels)
    else:
        decoded = decode_raster(data, fmt, max_pixels=max_pixels)
    return np.asarray(decoded.values, dtype=np.float64), bool(decoded.invert) != (decoded.slope < 0)


def _model_row(
    model: ReadyModel, item: PredictInput, max_pixels: int, tensors: TensorCache | None
) -> np.ndarray:
    """One image's (1, S, S) model input: from the tensor cache, or read, decoded and preprocessed."""
    if item.upload is not None:
        pixels, invert = _decode_upload(item.upload, max_pixels)
        return embedding.prepare_batch(model.spec, [pixels], inverts=[invert])[0]
    assert item.pixels_path is not None
    key = None
    if tensors is not None and tensors.max_bytes and item.content_sha256:
        key = TensorKey(item.content_sha256, item.invert, model.spec)
        cached = tensors.get(key)
        if cached is not None:
            return cached
    pixels32, full = embedding.read_case_pixels(item.pixels_path)
    row = embedding.prepare_batch(model.spec, [pixels32], inverts=[item.invert], full_scales=[full])[0]
    if key is not None and tensors is not None:
        tensors.put(key, row)
    return row


def run_predictions(
    model: ReadyModel,
    items: list[PredictInput],
    max_pixels: int,
    *,
    tensors: TensorCache | None = None,
    batcher: MicroBatcher | None = None,
) -> list[dict[str, Any]]:
    """Decode, preprocess and score (runs in the pool). Raises ``ImagingError`` for a bad upload.

    With ``tensors`` stored cases' inputs come from / go to the cache; with ``batcher`` the
    onnxruntime run may be shared with other requests for the same model arriving at the same time.
    """
    batch = np.stack([_model_row(model, item, max_pixels, tensors) for item in items])

    def graph(x: np.ndarray) -> np.ndarray:
        return embedding.run_outputs(model.onnx_path, x, [PROBABILITIES])[0]

    probs = graph(batch) if batcher is None else batcher.run(model.run_key, graph, batch)
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
