"""Image embeddings with a model version's ONNX export, run by onnxruntime (no torch in this process).

Pixels become model input with ``trainer.imaging`` (numpy only), the function the trainer's
evaluation view uses, with the spec the export records in its metadata; so an embedding computed here
equals the trainer's evaluation feature of the same file (see tests/server/registry/test_parity.py).
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from server.registry.priority import call_in_lowered_thread
from trainer.arrays import Float32Array
from trainer.imaging import PreprocessSpec, model_input, read_values

#: ONNX metadata key holding the ``PreprocessSpec`` as JSON (written by ``trainer.export``).
SPEC_METADATA_KEY = "mcgip.preprocessing"

_SESSIONS: OrderedDict[tuple[str, int, int], Any] = OrderedDict()
_LOCK = threading.Lock()
_MAX_SESSIONS = 4
#: Threads one onnxruntime run may use in this process. Two matches the development/target box (2
#: cores) for sessions in the web process; a predict worker process sets its own (``configure_sessions``).
_INTRA_OP_THREADS = 2
#: Nice value added to the threads of sessions created from now on (``MCGIP_PREDICT_NICE`` in the
#: web process, set by ``AppContext``): inference yields the CPU to gaze ingest and the event loop.
_SESSION_NICE = 0


def configure_sessions(*, intra_op_threads: int | None = None, nice: int | None = None) -> None:
    """Settings of the onnxruntime sessions this process creates from now on."""
    global _INTRA_OP_THREADS, _SESSION_NICE
    if intra_op_threads is not None:
        _INTRA_OP_THREADS = max(1, intra_op_threads)
    if nice is not None:
        _SESSION_NICE = max(0, min(19, nice))


class _Photometry(Protocol):
    invert: bool
    value_scale: float


def shown_inverted(image: _Photometry) -> bool:
    """Whether high stored values are shown dark: MONOCHROME1, or a negative rescale slope.

    Takes a ``StoredImage`` row or a freshly ingested image.
    """
    return bool(image.invert) != (image.value_scale < 0)


def read_case_pixels(path: Path) -> tuple[Float32Array, float]:
    """Stored values of a case's lossless pixel file and the file's full scale."""
    return read_values(path)


def session_options() -> Any:
    """The onnxruntime options of every session this process creates.

    Worker threads do not spin-wait between operators: the web process shares its cores with the
    event loop and the gaze writer, and spinning threads would take the CPU from them.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = _INTRA_OP_THREADS
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def session_for(onnx_path: Path) -> Any:
    """A cached onnxruntime session for an export (at most a few kept, least recently used dropped).

    Keyed on the file's path, modification time and size, so a re-created export gets a new session.
    """
    import onnxruntime as ort

    resolved = onnx_path.resolve()
    stat = resolved.stat()
    key = (str(resolved), stat.st_mtime_ns, stat.st_size)
    with _LOCK:
        if key in _SESSIONS:
            _SESSIONS.move_to_end(key)
            return _SESSIONS[key]
        session = call_in_lowered_thread(
            lambda: ort.InferenceSession(
                key[0], sess_options=session_options(), providers=["CPUExecutionProvider"]
            ),
            _SESSION_NICE,
        )
        _SESSIONS[key] = session
        while len(_SESSIONS) > _MAX_SESSIONS:
            _SESSIONS.popitem(last=False)
        return session


def preprocess_spec(onnx_path: Path) -> PreprocessSpec:
    """The export's recorded preprocessing; older exports get the defaults at their input size."""
    session = session_for(onnx_path)
    meta = session.get_modelmeta().custom_metadata_map
    if SPEC_METADATA_KEY in meta:
        return PreprocessSpec.from_dict(json.loads(meta[SPEC_METADATA_KEY]))
    return PreprocessSpec(size=int(session.get_inputs()[0].shape[-1]))


def output_names(onnx_path: Path) -> list[str]:
    return [o.name for o in session_for(onnx_path).get_outputs()]


def run_outputs(onnx_path: Path, batch: Float32Array, names: Sequence[str]) -> list[Float32Array]:
    """Run the graph on a prepared (N, 1, S, S) batch; returns the named outputs as float32."""
    outs = session_for(onnx_path).run(list(names), {"image": batch})
    return [np.asarray(o, dtype=np.float32) for o in outs]


def _feature_output(onnx_path: Path) -> str:
    names = output_names(onnx_path)
    return "embedding" if "embedding" in names else "features"


def prepare_batch(
    spec: PreprocessSpec,
    images: Sequence[NDArray[Any]],
    *,
    inverts: Sequence[bool] | None = None,
    full_scales: Sequence[float | None] | None = None,
) -> Float32Array:
    """(H, W) stored-value images -> (N, 1, S, S) float32 model inputs (``trainer.imaging``)."""
    n = len(images)
    flags = list(inverts) if inverts is not None else [False] * n
    scales = list(full_scales) if full_scales is not None else [None] * n
    if not n:
        return np.zeros((0, 1, spec.size, spec.size), dtype=np.float32)
    return np.stack(
        [
            model_input(img, spec, invert=inv, full_scale=fs)
            for img, inv, fs in zip(images, flags, scales, strict=True)
        ]
    )


def embed(
    onnx_path: Path,
    images: Sequence[NDArray[Any]],
    *,
    inverts: Sequence[bool] | None = None,
    full_scales: Sequence[float | None] | None = None,
    batch: int = 16,
) -> Float32Array:
    """Embed (H, W) stored-value images with an exported encoder.

    Returns:
        (N, F) float32, each row L2-normalised (so a dot product is the cosine similarity).
    """
    spec = preprocess_spec(onnx_path)
    flags = list(inverts) if inverts is not None else [False] * len(images)
    scales = list(full_scales) if full_scales is not None else [None] * len(images)
    name = _feature_output(onnx_path)
    rows: list[Float32Array] = []
    for start in range(0, len(images), batch):
        end = start + batch
        x = prepare_batch(spec, images[start:end], inverts=flags[start:end], full_scales=scales[start:end])
        rows.append(run_outputs(onnx_path, x, [name])[0])
    if not rows:
        return np.zeros((0, 0), dtype=np.float32)
    feats = np.concatenate(rows)
    norms = np.linalg.norm(feats, axis=1, keepdims=True)
    return (feats / np.maximum(norms, 1e-12)).astype(np.float32)


def to_bytes(vector: Float32Array) -> bytes:
    return np.asarray(vector, dtype="<f4").tobytes()


def from_bytes(data: bytes, dim: int) -> Float32Array:
    vec = np.frombuffer(data, dtype="<f4")
    if vec.shape[0] != dim:
        raise ValueError(f"embedding has {vec.shape[0]} values, expected {dim}")
    return vec.astype(np.float32)
