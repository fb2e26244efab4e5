"""What one prediction job does inside the predict pool: read, decode, preprocess and score images.

This is the part of a prediction that costs CPU, so it runs in a ``PredictPool`` worker (a process by
default, see ``server.registry.pool``), never on the event loop. It imports no database or web code:
a worker process only loads numpy, the image decoders, ``trainer.imaging`` (the one preprocessing
function) and onnxruntime, and everything a job needs travels with it as plain, picklable values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from server.imaging.detect import ImageFormat, detect_format
from server.imaging.dicom_image import decode_first_frame, read_dataset
from server.imaging.raster import decode_raster
from server.registry import embedding
from server.registry.batcher import MicroBatcher
from trainer.arrays import Float32Array
from trainer.imaging import PreprocessSpec

PROBABILITIES = "probabilities"


@dataclass(frozen=True)
class ScoringModel:
    """The parts of a ready model version a worker needs: export file, label names, preprocessing.

    Attributes:
        run_key: (onnx path, mtime_ns, size) of the export: the micro-batching key of this model.
    """

    onnx_path: Path
    classes: tuple[str, ...]
    spec: PreprocessSpec
    run_key: tuple[str, int, int]


@dataclass
class PredictInput:
    """One image to score: a stored case (read in the pool) or the bytes of an upload.

    Attributes:
        content_sha256: ``StoredImage.sha256`` of a stored case (the hash of ``pixels_path``): the
            tensor cache key.
        tensor: the case's (1, S, S) model input when the tensor cache already holds it (then the
            worker skips reading and preprocessing).
    """

    case_id: int | None = None
    pixels_path: Path | None = None
    invert: bool = False
    upload: bytes | None = None
    filename: str | None = None
    content_sha256: str | None = None
    tensor: Float32Array | None = field(default=None, repr=False)


@dataclass
class Scored:
    """A job's answer: one prediction per input, and the model inputs the worker had to compute.

    Attributes:
        predictions: ``{"probabilities": {label: p}, "label", "case_id" | "filename"}`` per input.
        computed: input index -> (1, S, S) model input, for stored cases read and preprocessed by
            this job (the caller may cache them).
    """

    predictions: list[dict[str, Any]]
    computed: dict[int, Float32Array]


def decode_upload(data: bytes, max_pixels: int) -> tuple[np.ndarray, bool]:
    """Stored values and shown-inverted flag of an uploaded PNG/JPEG/DICOM (ImagingError on failure)."""
    fmt = detect_format(data)
    if fmt is ImageFormat.DICOM:
        decoded = decode_first_frame(read_dataset(data), max_pixels=max_pixels)
    else:
        decoded = decode_raster(data, fmt, max_pixels=max_pixels)
    return np.asarray(decoded.values, dtype=np.float64), bool(decoded.invert) != (decoded.slope < 0)


def model_row(spec: PreprocessSpec, item: PredictInput, max_pixels: int) -> Float32Array:
    """One image's (1, S, S) model input: the cached tensor, or read, decoded and preprocessed."""
    if item.tensor is not None:
        return item.tensor
    if item.upload is not None:
        pixels, invert = decode_upload(item.upload, max_pixels)
        return embedding.prepare_batch(spec, [pixels], inverts=[invert])[0]
    if item.pixels_path is None:
        raise ValueError("a prediction input needs a stored case's pixels, an upload or a tensor")
    pixels32, full = embedding.read_case_pixels(item.pixels_path)
    return embedding.prepare_batch(spec, [pixels32], inverts=[item.invert], full_scales=[full])[0]


def score(
    model: ScoringModel,
    items: list[PredictInput],
    max_pixels: int,
    batcher: MicroBatcher | None = None,
) -> Scored:
    """Decode, preprocess and score ``items`` as one (N, 1, S, S) batch. Raises ``ImagingError`` for a
    bad upload.

    With ``batcher`` (thread workers only: it coordinates threads of one process) the onnxruntime run
    may be shared with other requests for the same model arriving at the same time.
    """
    rows = [model_row(model.spec, item, max_pixels) for item in items]
    computed = {
        i: row
        for i, (item, row) in enumerate(zip(items, rows, strict=True))
        if item.tensor is None and item.upload is None and item.content_sha256
    }
    batch = np.stack(rows)

    def graph(x: Float32Array) -> Float32Array:
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
    return Scored(out, computed)
