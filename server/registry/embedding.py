"""Image embeddings with a model version's ONNX export, run by onnxruntime (no torch in this process).

Preprocessing mirrors the trainer's evaluation view (``trainer.data.augment.eval_transform`` after
``trainer.data.images.read_grayscale``): the 0.5-99.5 percentile window mapped to [0, 1], the shorter
side resized to the model's input size, a centre crop; the ONNX graph applies the normalisation
itself. Small interpolation differences from torchvision do not matter for retrieval because the
stored case embeddings and query embeddings both come from this same code.
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

FloatArray = NDArray[np.float32]

_SESSIONS: OrderedDict[str, object] = OrderedDict()
_LOCK = threading.Lock()
_MAX_SESSIONS = 4


def to_unit_range(pixels: NDArray[np.floating] | NDArray[np.integer]) -> FloatArray:
    """(H, W) grey values -> float32 in [0, 1] through the 0.5-99.5 percentile window."""
    arr = np.asarray(pixels, dtype=np.float32)
    if arr.ndim != 2:
        raise ValueError(f"expected a single-channel (H, W) image, got shape {arr.shape}")
    lo, hi = np.percentile(arr, [0.5, 99.5])
    if hi <= lo:
        return np.zeros_like(arr)
    return np.clip((arr - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def preprocess(pixels: NDArray[np.floating] | NDArray[np.integer], size: int) -> FloatArray:
    """(H, W) grey image -> (1, size, size) float32 model input in [0, 1]."""
    unit = to_unit_range(pixels)
    h, w = unit.shape
    scale = size / min(h, w)
    new_w, new_h = max(size, round(w * scale)), max(size, round(h * scale))
    resized = np.asarray(Image.fromarray(unit, mode="F").resize((new_w, new_h), Image.Resampling.BILINEAR))
    top, left = (new_h - size) // 2, (new_w - size) // 2
    return resized[top : top + size, left : left + size][None].astype(np.float32)


def read_pixels(data: bytes | Path) -> NDArray[np.float32]:
    """Decode a PNG/JPEG (8 or 16 bit, grey or colour -> luminance) into (H, W) float32."""
    source = io.BytesIO(data) if isinstance(data, bytes) else data
    with Image.open(source) as img:
        if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
            return np.asarray(img, dtype=np.float32)
        return np.asarray(img.convert("L"), dtype=np.float32)


def _session(onnx_path: Path) -> object:
    import onnxruntime as ort

    key = str(onnx_path.resolve())
    with _LOCK:
        if key in _SESSIONS:
            _SESSIONS.move_to_end(key)
            return _SESSIONS[key]
        options = ort.SessionOptions()
        options.intra_op_num_threads = 2  # keep the web process responsive
        session = ort.InferenceSession(key, sess_options=options, providers=["CPUExecutionProvider"])
        _SESSIONS[key] = session
        while len(_SESSIONS) > _MAX_SESSIONS:
            _SESSIONS.popitem(last=False)
        return session


def input_size(onnx_path: Path) -> int:
    """The square input side the exported graph expects."""
    inputs = _session(onnx_path).get_inputs()  # type: ignore[attr-defined]
    return int(inputs[0].shape[-1])


def embed(
    onnx_path: Path, images: Sequence[NDArray[np.floating] | NDArray[np.integer]], batch: int = 16
) -> FloatArray:
    """Embed (H, W) grey images with an exported encoder.

    Returns:
        (N, F) float32, each row L2-normalised (so a dot product is the cosine similarity).
    """
    session = _session(onnx_path)
    size = input_size(onnx_path)
    rows: list[FloatArray] = []
    for start in range(0, len(images), batch):
        x = np.stack([preprocess(img, size) for img in images[start : start + batch]])
        out = session.run(["features"], {"image": x})[0]  # type: ignore[attr-defined]
        rows.append(np.asarray(out, dtype=np.float32))
    if not rows:
        return np.zeros((0, 0), dtype=np.float32)
    feats = np.concatenate(rows)
    norms = np.linalg.norm(feats, axis=1, keepdims=True)
    return (feats / np.maximum(norms, 1e-12)).astype(np.float32)


def to_bytes(vector: FloatArray) -> bytes:
    return np.asarray(vector, dtype="<f4").tobytes()


def from_bytes(data: bytes, dim: int) -> FloatArray:
    vec = np.frombuffer(data, dtype="<f4")
    if vec.shape[0] != dim:
        raise ValueError(f"embedding has {vec.shape[0]} values, expected {dim}")
    return vec.astype(np.float32)
