"""A registered model version with real (tiny) artifacts, built without torch."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from server.db import Database
from server.models import ModelVersion
from server.registry.artifacts import CARD_FILE, ENCODER_FILE, EXPORT_FILES, HEAD_FILE, checksums
from server.storage import BlobStore
from trainer.protocol import evaluate_conditions

SIZE = 16
FEATURES = 4


def tiny_onnx(seed: int = 0) -> bytes:
    """(N, 1, 16, 16) -> (N, 4): a fixed random linear map of 4x4 average-pooled pixels."""
    weight = np.random.default_rng(seed).normal(size=(16, FEATURES)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("AveragePool", ["image"], ["pooled"], kernel_shape=[4, 4], strides=[4, 4]),
            helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
            helper.make_node("MatMul", ["flat", "w"], ["features"]),
        ],
        "tiny",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 1, SIZE, SIZE])],
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", FEATURES])],
        [numpy_helper.from_array(weight, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def sample_evaluation(n_cases: int = 60, seed: int = 0) -> dict[str, Any]:
    """A real cross-validated report (trainer.protocol, no torch) where McGIP's features carry signal."""
    rng = np.random.default_rng(seed)
    labels = ["normal" if i % 2 else "mass" for i in range(n_cases)]
    y = np.array([i % 2 for i in range(n_cases)])
    baseline = rng.normal(size=(n_cases, 4))
    mcgip = baseline.copy()
    mcgip[:, 0] += 3.0 * y
    return evaluate_conditions(
        {"mcgip": mcgip, "baseline": baseline}, labels, [f"img{i}" for i in range(n_cases)]
    )


def make_model_version(
    db: Database,
    blobs: BlobStore,
    dataset_id: int,
    *,
    version: int = 1,
    seed: int = 0,
    evaluation: dict[str, Any] | None = None,
) -> int:
    """Write artifacts under ``models/test-<dataset>-<version>`` and register them; returns the id."""
    folder = f"models/test-{dataset_id}-{version}"
    blobs.write(f"{folder}/{ENCODER_FILE}", f"encoder {seed}".encode())
    blobs.write(f"{folder}/{EXPORT_FILES['onnx']}", tiny_onnx(seed))
    blobs.write(f"{folder}/{EXPORT_FILES['torchscript']}", b"torchscript bytes")
    blobs.write(f"{folder}/{EXPORT_FILES['safetensors']}", b"safetensors bytes")
    blobs.write(f"{folder}/{CARD_FILE}", json.dumps({"format": "mcgip-model-card", "name": "tiny"}).encode())
    config = {"method": {"name": "byol"}, "model": {"backbone": "resnet18"}}
    with db.session() as session:
        row = ModelVersion(
            dataset_id=dataset_id,
            version=version,
            method="byol",
            backbone="resnet18",
            config=config,
            snapshot={"counts": {"cases": 2}},
            metrics={"side_by_side": {}} | ({"evaluation": evaluation} if evaluation else {}),
            checksums=checksums(blobs.path(folder)),
            artifact_dir=folder,
            is_active=False,
        )
        session.add(row)
        session.flush()
        return row.id


CLASSES = ("a", "b")
TEMPERATURE = 1.7


def diagnosis_weights(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(W (16, F) pooled -> embedding, H (F, 2) embedding -> logits, b (2,))."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(16, FEATURES)).astype(np.float32)
    h = rng.normal(size=(FEATURES, len(CLASSES))).astype(np.float32)
    b = rng.normal(size=len(CLASSES)).astype(np.float32)
    return w, h, b


def tiny_diagnosis_onnx(seed: int = 0) -> bytes:
    """The exported layout of a version with a head: outputs ``embedding`` and ``probabilities``
    (softmax of the head's logits over the temperature), label names and spec in the metadata."""
    w, h, b = diagnosis_weights(seed)
    graph = helper.make_graph(
        [
            helper.make_node("AveragePool", ["image"], ["pooled"], kernel_shape=[4, 4], strides=[4, 4]),
            helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
            helper.make_node("MatMul", ["flat", "w"], ["embedding"]),
            helper.make_node("MatMul", ["embedding", "h"], ["hw"]),
            helper.make_node("Add", ["hw", "b"], ["logits"]),
            helper.make_node("Div", ["logits", "t"], ["scaled"]),
            helper.make_node("Softmax", ["scaled"], ["probabilities"], axis=1),
        ],
        "tiny-diagnosis",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 1, SIZE, SIZE])],
        [
            helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", FEATURES]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", len(CLASSES)]),
        ],
        [
            numpy_helper.from_array(w, "w"),
            numpy_helper.from_array(h, "h"),
            numpy_helper.from_array(b, "b"),
            numpy_helper.from_array(np.array(TEMPERATURE, dtype=np.float32), "t"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for key, value in {
        "mcgip.preprocessing": json.dumps({"size": SIZE, "intensity": "minmax", "mean": 0.5, "std": 0.25}),
        "mcgip.classes": json.dumps(list(CLASSES)),
        "mcgip.temperature": str(TEMPERATURE),
    }.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    return model.SerializeToString()


def make_diagnosis_version(
    db: Database,
    blobs: BlobStore,
    dataset_id: int,
    *,
    version: int = 1,
    head: bool = True,
    active: bool = False,
    problems: list[str] | None = None,
) -> int:
    """A registered version whose ONNX export predicts (``head``), or one without a head."""
    folder = f"models/diag-{dataset_id}-{version}"
    blobs.write(f"{folder}/{ENCODER_FILE}", b"encoder")
    if head:
        blobs.write(f"{folder}/{EXPORT_FILES['onnx']}", tiny_diagnosis_onnx())
        calibration = {"temperature": TEMPERATURE, "heldout_ece_before": 0.2, "heldout_ece_after": 0.05}
        blobs.write(
            f"{folder}/{HEAD_FILE}",
            json.dumps({"format": "mcgip-diagnosis-head", "info": {"calibration": calibration}}).encode(),
        )
    else:
        blobs.write(f"{folder}/{EXPORT_FILES['onnx']}", tiny_onnx())
    metrics = {"diagnosis": {"status": "ok" if head else "insufficient_labels", "problems": problems or []}}
    with db.session() as session:
        row = ModelVersion(
            dataset_id=dataset_id,
            version=version,
            method="byol",
            backbone="resnet18",
            config={"gaze": {"enabled": True}},
            snapshot={"counts": {"cases": 2}},
            metrics=metrics,
            checksums=checksums(blobs.path(folder)),
            artifact_dir=folder,
            is_active=active,
        )
        session.add(row)
        session.flush()
        return row.id
