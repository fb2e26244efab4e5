"""A registered model version with real (tiny) artifacts, built without torch."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from server.db import Database
from server.models import ModelVersion
from server.registry.artifacts import CARD_FILE, ENCODER_FILE, EXPORT_FILES, checksums
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
