"""Diagnosis predictions with a model version's ONNX export (``probabilities`` output), no torch.

The route resolves the version and the images (database and blob reads), then hands decoding,
preprocessing (``trainer.imaging``, the trainer's own function) and the onnxruntime call
(``scoring.score``) to the bounded ``PredictPool`` (worker processes by default) so the event loop
never waits on them. Per request the work that does not change is cached: the export's session and
label metadata (keyed on the files' modification times) and each stored case's preprocessed input
(``predict_cache.TensorCache`` in the web process, keyed on its content hash and the spec; a hit
travels to the worker, which then skips reading and preprocessing). With thread workers, concurrent
requests for one model also share an onnxruntime run (``batcher.MicroBatcher``).
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from server.cases.service import PIXELS_FILE, visible_case
from server.exceptions import Conflict, Invalid, NotFound
from server.models import Case, ModelVersion, StoredImage, User
from server.registry import embedding, scoring, versions
from server.registry.artifacts import EXPORT_FILES, HEAD_FILE
from server.registry.batcher import MicroBatcher
from server.registry.pool import PredictPool
from server.registry.predict_cache import TensorCache, TensorKey
from server.registry.scoring import PROBABILITIES, PredictInput, Scored, ScoringModel
from server.storage import BlobStore
from trainer.diagnosis.card import NOT_FOR_CLINICAL_USE, calibration_note
from trainer.imaging import PreprocessSpec

__all__ = ["PROBABILITIES", "PredictInput", "ReadyModel", "predict_in_pool", "run_predictions"]


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

    @property
    def scoring(self) -> ScoringModel:
        """What a pool worker needs of this model (plain values: it may travel to a process)."""
        return ScoringModel(self.onnx_path, self.classes, self.spec, self.run_key)


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


def _cache_lookup(tensors: TensorCache | None, spec: PreprocessSpec, items: list[PredictInput]) -> None:
    """Give each stored case found in the tensor cache its model input (the worker then skips it)."""
    if tensors is None or not tensors.max_bytes:
        return
    for item in items:
        if item.upload is None and item.content_sha256 and item.tensor is None:
            item.tensor = tensors.get(TensorKey(item.content_sha256, item.invert, spec))


def _cache_store(
    tensors: TensorCache | None, spec: PreprocessSpec, items: list[PredictInput], scored: Scored
) -> None:
    """Keep the model inputs the worker computed for stored cases."""
    if tensors is None or not tensors.max_bytes:
        return
    for i, row in scored.computed.items():
        sha = items[i].content_sha256
        if sha:
            tensors.put(TensorKey(sha, items[i].invert, spec), row)


def run_predictions(
    model: ReadyModel,
    items: list[PredictInput],
    max_pixels: int,
    *,
    tensors: TensorCache | None = None,
    batcher: MicroBatcher | None = None,
) -> list[dict[str, Any]]:
    """Decode, preprocess and score in the calling thread (jobs and the CLI; the API uses
    ``predict_in_pool``). Raises ``ImagingError`` for a bad upload.

    With ``tensors`` stored cases' inputs come from / go to the cache; with ``batcher`` the
    onnxruntime run may be shared with other threads predicting with the same model.
    """
    _cache_lookup(tensors, model.spec, items)
    scored = scoring.score(model.scoring, items, max_pixels, batcher)
    _cache_store(tensors, model.spec, items, scored)
    return scored.predictions


async def predict_in_pool(
    pool: PredictPool,
    model: ReadyModel,
    items: list[PredictInput],
    max_pixels: int,
    *,
    tensors: TensorCache | None = None,
    batcher: MicroBatcher | None = None,
) -> list[dict[str, Any]]:
    """``run_predictions`` in the bounded pool; the event loop only looks up and fills the cache.

    Raises ``PoolFull`` (503 + Retry-After) when the pool is full and ``ImagingError`` for a bad
    upload. ``batcher`` is used with thread workers only (it coordinates threads of one process).
    """
    _cache_lookup(tensors, model.spec, items)
    shared = None if pool.processes else batcher
    scored = await pool.run(scoring.score, model.scoring, items, max_pixels, shared)
    _cache_store(tensors, model.spec, items, scored)
    return scored.predictions


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
