"""Export round trips: ONNX (onnxruntime, dynamic batch), TorchScript, safetensors into torchvision."""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
import torch
import torchvision
from safetensors.torch import load_file

from trainer import api
from trainer.export import NormalizedEncoder, load_encoder, save_encoder, sha256
from trainer.models.backbone import build_backbone

INFO: dict[str, Any] = {
    "backbone": "resnet18",
    "image_size": 48,
    "normalize": {"mean": 0.4, "std": 0.3},
    "run": "mcgip",
    "config": {"name": "t", "method": {"name": "moco_v2"}, "data": {"intensity": "minmax"}},
    "snapshot": {
        "counts": {"cases": 10, "sessions": 20, "readers": 2, "positives": 7},
        "gaze": {"metric": "moments", "threshold": 0.9},
    },
}


@pytest.fixture(scope="module")
def encoder_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    net, _ = build_backbone("resnet18")
    # Non-trivial BN statistics so eval-mode exports are really exercised.
    net.train()
    with torch.no_grad():
        net(torch.randn(8, 1, 48, 48) * 2 + 1)
    return save_encoder(tmp_path_factory.mktemp("enc") / "encoder.pt", net, INFO)


def _reference(encoder_file: Path, x: torch.Tensor) -> torch.Tensor:
    enc, info = load_encoder(encoder_file)
    with torch.no_grad():
        return NormalizedEncoder(enc, **info["normalize"]).eval()(x)


def test_onnx_dynamic_batch_matches_pytorch(encoder_file: Path, tmp_path: Path) -> None:
    path = api.export_model(encoder_file, "onnx", tmp_path / "enc.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for n in (1, 5):
        x = torch.rand(n, 1, 48, 48)
        got = session.run(["embedding"], {"image": x.numpy()})[0]
        assert got.shape == (n, 512)
        assert np.abs(got - _reference(encoder_file, x).numpy()).max() <= 1e-4


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
def test_torchscript_round_trip(encoder_file: Path, tmp_path: Path) -> None:
    path = api.export_model(encoder_file, "torchscript", tmp_path / "enc.ts")
    module = torch.jit.load(str(path))
    x = torch.rand(3, 1, 48, 48)
    with torch.no_grad():
        assert torch.allclose(module(x), _reference(encoder_file, x), atol=1e-5)


def test_safetensors_load_into_torchvision_strict(encoder_file: Path, tmp_path: Path) -> None:
    path = api.export_model(encoder_file, "safetensors", tmp_path / "enc.safetensors")
    state = load_file(str(path))
    with pytest.raises(RuntimeError):  # the stock 3-channel model with fc does not match
        torchvision.models.resnet18().load_state_dict(state, strict=True)
    net = torchvision.models.resnet18()
    net.conv1 = torch.nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    net.fc = torch.nn.Identity()
    net.load_state_dict(state, strict=True)
    net.eval()
    x = torch.rand(2, 1, 48, 48)
    with torch.no_grad():
        assert torch.allclose(net((x - 0.4) / 0.3), _reference(encoder_file, x), atol=1e-5)


def test_model_card(encoder_file: Path, tmp_path: Path) -> None:
    path = api.export_model(encoder_file, "card", tmp_path / "card.json")
    card = json.loads(path.read_text())
    assert card["snapshot"]["counts"] == INFO["snapshot"]["counts"]
    assert card["gaze"] == {"metric": "moments", "threshold": 0.9}
    assert card["checksums"]["encoder"]["sha256"] == sha256(encoder_file)
    assert card["libraries"]["torch"] == importlib.metadata.version("torch")
    assert card["input"]["normalize"] == {"mean": 0.4, "std": 0.3}


def test_unknown_format(encoder_file: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="format"):
        api.export_model(encoder_file, "pickle", tmp_path / "x")


def test_cli_exports_several_formats_in_one_process(
    encoder_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    outs = {"torchscript": tmp_path / "enc.ts", "safetensors": tmp_path / "enc.safetensors"}
    argv = ["export", "--checkpoint", str(encoder_file)]
    for fmt, out in outs.items():
        argv += ["--format", fmt, "--out", str(out)]
    assert api.main(argv) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(e["event"], e["format"]) for e in events] == [("exported", f) for f in outs]
    assert all(out.stat().st_size > 0 for out in outs.values())

    # One format failing does not stop the next; the exit status says something failed.
    real_export = api.export_encoder

    def onnx_breaks(checkpoint: Path, fmt: str, out: Path) -> Path:
        if fmt == "onnx":
            raise RuntimeError("ONNX output differs from PyTorch")
        return real_export(checkpoint, fmt, out)

    monkeypatch.setattr("trainer.api.export_encoder", onnx_breaks)
    argv = [
        "export",
        "--checkpoint",
        str(encoder_file),
        "--format",
        "onnx",
        "--out",
        str(tmp_path / "x.onnx"),
    ]
    argv += ["--format", "card", "--out", str(tmp_path / "card.json")]
    assert api.main(argv) == 1
    failed, card = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert failed == {"event": "export_failed", "format": "onnx", "error": "ONNX output differs from PyTorch"}
    assert card["event"] == "exported" and json.loads((tmp_path / "card.json").read_text())
    unpaired = ["export", "--checkpoint", str(encoder_file), "--format", "onnx", "--format", "card"]
    assert api.main([*unpaired, "--out", str(tmp_path / "y.onnx")]) == 2
