"""One preprocessing: what the server feeds its ONNX session equals what the trainer evaluates.

For 8-bit PNG, 16-bit PNG, JPEG and DICOM (MONOCHROME2 with a rescale intercept, MONOCHROME1, a
non-trivial slope), each image goes through the server's ingest (the stored lossless pixels and
photometry) and then (a) the server's embedding path (onnxruntime) and (b) the trainer's evaluation
view (PyTorch, from the same stored file, as a snapshot hands it over). The preprocessed tensor is
also compared with an independent reference computed from the original source values.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
import torch
from PIL import Image

from server.imaging import ingest_image
from server.registry import embedding
from tests.server.imaging.helpers import SALT, bundled_dataset, dicom_bytes
from tests.trainer.fixtures import render
from tests.trainer.imaging.test_preprocess import torch_reference
from trainer.data.dataset import ImageStore
from trainer.evaluate import embed as trainer_embed
from trainer.export import export_onnx, load_encoder, save_encoder
from trainer.imaging import PreprocessSpec, model_input
from trainer.models.backbone import build_backbone

SIZE = 32
INFO: dict[str, Any] = {
    "backbone": "resnet18",
    "image_size": SIZE,
    "normalize": {"mean": 0.45, "std": 0.28},
    "config": {"data": {"intensity": "minmax"}},
}


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def _jpeg(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _dicom(name: str, **changes: Any) -> bytes:
    ds = bundled_dataset(name)
    for key, value in changes.items():
        setattr(ds, key, value)
    return dicom_bytes(ds)


def _sources() -> dict[str, tuple[bytes, np.ndarray, bool]]:
    """name -> (file bytes, source values as the reader sees them (modality units), shown inverted)."""
    img = render("blob", 3, size=90)[:, :70]  # non-square
    eight = (img * 255).round().astype(np.uint8)
    sixteen = (img * 4095).round().astype(np.uint16)
    jpeg = _jpeg(eight)
    with Image.open(io.BytesIO(jpeg)) as decoded:
        jpeg_values = np.asarray(decoded.convert("L"), dtype=np.float64)
    out: dict[str, tuple[bytes, np.ndarray, bool]] = {
        "png8": (_png(eight), eight.astype(np.float64), False),
        "png16": (_png(sixteen), sixteen.astype(np.float64), False),
        "jpeg": (jpeg, jpeg_values, False),
    }
    for name, file, changes in (
        ("dicom_ct_mono2", "CT_small.dcm", {}),
        ("dicom_mono1", "MR_small.dcm", {"PhotometricInterpretation": "MONOCHROME1"}),
        ("dicom_slope", "MR_small.dcm", {"RescaleSlope": "2.5", "RescaleIntercept": "-100"}),
    ):
        data = _dicom(file, **changes)
        ds = pydicom.dcmread(io.BytesIO(data))
        values = ds.pixel_array * float(ds.get("RescaleSlope", 1)) + float(ds.get("RescaleIntercept", 0))
        out[name] = (data, values.astype(np.float64), ds.PhotometricInterpretation == "MONOCHROME1")
    return out


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    torch.manual_seed(0)
    net, _ = build_backbone("resnet18")
    net.train()
    with torch.no_grad():  # non-trivial batch-norm statistics
        net(torch.randn(8, 1, SIZE, SIZE) * 2 + 1)
    folder = tmp_path_factory.mktemp("parity")
    encoder = save_encoder(folder / "encoder.pt", net.eval(), INFO)
    enc, info = load_encoder(encoder)
    return encoder, export_onnx(enc, info, folder / "encoder.onnx")


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, bool, np.ndarray, bool]]:
    """name -> (stored pixels16.png, shown inverted per the server, source values, source inverted)."""
    folder = tmp_path_factory.mktemp("stored")
    out = {}
    for name, (data, values, inverted) in _sources().items():
        image = ingest_image(data, max_pixels=10_000_000, uid_salt=SALT)
        path = folder / f"{name}.png"
        path.write_bytes(image.pixels_png16)
        out[name] = (path, embedding.shown_inverted(image), values, inverted)
    return out


def test_preprocessed_tensor_matches_the_source_reference(
    stored: dict[str, tuple[Path, bool, np.ndarray, bool]],
) -> None:
    spec = PreprocessSpec(size=SIZE)
    for name, (path, invert, values, src_inverted) in stored.items():
        assert invert == src_inverted, name
        pixels, full = embedding.read_case_pixels(path)
        got = model_input(pixels, spec, invert=invert, full_scale=full)
        want = torch_reference(values, SIZE, invert=src_inverted)
        assert np.abs(got - want).max() <= 1e-5, name


def test_app_embeddings_equal_trainer_evaluation_features(
    exported: tuple[Path, Path], stored: dict[str, tuple[Path, bool, np.ndarray, bool]]
) -> None:
    encoder_path, onnx_path = exported
    names = sorted(stored)
    decoded = [embedding.read_case_pixels(stored[n][0]) for n in names]
    app = embedding.embed(
        onnx_path,
        [v for v, _ in decoded],
        inverts=[stored[n][1] for n in names],
        full_scales=[f for _, f in decoded],
    )
    store = ImageStore(
        [stored[n][0] for n in names], load_size=40, intensity="minmax", inverts=[stored[n][1] for n in names]
    )
    encoder, info = load_encoder(encoder_path)
    spec = embedding.preprocess_spec(onnx_path)
    assert spec == PreprocessSpec(size=SIZE, mean=0.45, std=0.28)
    feats = trainer_embed(encoder, store, spec, list(range(len(names))), device=torch.device("cpu")).numpy()
    feats /= np.linalg.norm(feats, axis=1, keepdims=True)
    # Relative to the unit-norm vectors: the two runtimes' float32 kernels differ by ~1e-6.
    err = np.abs(app - feats).max(axis=1)
    assert err.max() <= 1e-4, dict(zip(names, err.tolist(), strict=True))
