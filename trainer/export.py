"""Encoder files and exports: TorchScript, ONNX (checked with onnxruntime), safetensors, model card.

``encoder.pt`` (written after training) holds the 1-channel ResNet encoder weights and what is
needed to use them (backbone, input size, normalisation, config, snapshot counts, metrics).

Exported graphs (TorchScript, ONNX) take ``(N, 1, S, S)`` float32 images scaled to [0, 1] and
include the normalisation ``(x - mean) / std``; they output ``(N, F)`` pooled features.
The safetensors file holds the bare encoder state dict (normalisation not included); it loads with
``strict=True`` into a torchvision ResNet adapted as in ``trainer.models.backbone``::

    net = torchvision.models.resnet18()
    net.conv1 = torch.nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    net.fc = torch.nn.Identity()
    net.load_state_dict(safetensors.torch.load_file(path), strict=True)
"""

from __future__ import annotations

import hashlib
import json
import platform
import warnings
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trainer.diagnosis.card import card_markdown, diagnosis_section
from trainer.diagnosis.head import DiagnosisHead, head_beside
from trainer.imaging import spec_from_encoder_info
from trainer.models.backbone import build_backbone

ENCODER_FORMAT = "mcgip-encoder"
FORMATS = ("torchscript", "onnx", "safetensors")
#: ONNX metadata key of the preprocessing spec (read by the server's embeddings and predictions).
SPEC_METADATA_KEY = "mcgip.preprocessing"


def save_encoder(path: Path, encoder: nn.Module, info: dict[str, Any]) -> Path:
    """Write ``encoder.pt``: ``{"format", "state_dict", **info}`` (backbone, image_size, normalize...)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in encoder.state_dict().items()}
    tmp = path.with_suffix(".tmp")
    torch.save({"format": ENCODER_FORMAT, "state_dict": state, **info}, tmp)
    tmp.replace(path)
    return path


def load_encoder(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """Load an ``encoder.pt`` or a training checkpoint (``step-*.pt``) as an eval-mode encoder.

    Returns:
        (encoder, info) where info has at least ``backbone``, ``image_size`` and ``normalize``.
    """
    raw = torch.load(Path(path), map_location="cpu", weights_only=False)
    if raw.get("format") == ENCODER_FORMAT:
        info = {k: v for k, v in raw.items() if k not in ("format", "state_dict")}
        state = raw["state_dict"]
    elif raw.get("format") == "mcgip-train-checkpoint":
        cfg = raw["meta"]["config"]
        info = {
            "backbone": cfg["model"]["backbone"],
            "image_size": cfg["data"]["image_size"],
            "normalize": {"mean": cfg["data"]["mean"], "std": cfg["data"]["std"]},
            "config": cfg,
            "run": raw["run"],
            "steps": raw["step"],
            **{k: v for k, v in raw["meta"].items() if k != "config"},
        }
        state = {k[len("encoder.") :]: v for k, v in raw["method"].items() if k.startswith("encoder.")}
    else:
        raise ValueError(f"{path}: neither an encoder file nor a training checkpoint")
    encoder, _ = build_backbone(info["backbone"])
    encoder.load_state_dict(state, strict=True)
    return encoder.eval(), info


class NormalizedEncoder(nn.Module):
    """Encoder with the input normalisation folded in: (N, 1, S, S) in [0, 1] -> (N, F)."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, encoder: nn.Module, mean: float, std: float) -> None:
        super().__init__()
        self.encoder = encoder
        self.register_buffer("mean", torch.tensor(float(mean)))
        self.register_buffer("std", torch.tensor(float(std)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder((x - self.mean) / self.std)


class DiagnosisModel(nn.Module):
    """Normalised encoder plus calibrated head: (N, 1, S, S) -> ((N, F) embedding, (N, C) probabilities).

    ``probabilities = softmax((embedding @ W^T + b) / T)`` with the head's ``W``, ``b`` and ``T``.
    """

    temperature: torch.Tensor

    def __init__(self, encoder: NormalizedEncoder, head: DiagnosisHead) -> None:
        super().__init__()
        self.body = encoder
        self.head = nn.Linear(head.n_features, len(head.classes))
        with torch.no_grad():
            self.head.weight.copy_(torch.from_numpy(head.weight).float())
            self.head.bias.copy_(torch.from_numpy(head.bias).float())
        self.register_buffer("temperature", torch.tensor(float(head.temperature)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embedding = self.body(x)
        return embedding, torch.softmax(self.head(embedding) / self.temperature, dim=1)


def _graph_module(encoder: nn.Module, info: dict[str, Any], head: DiagnosisHead | None = None) -> nn.Module:
    norm = info["normalize"]
    body = NormalizedEncoder(encoder, norm["mean"], norm["std"]).eval()
    return body if head is None else DiagnosisModel(body, head).eval()


def output_names(head: DiagnosisHead | None) -> list[str]:
    """Named graph outputs: ``embedding`` and, with a head, ``probabilities``."""
    return ["embedding"] if head is None else ["embedding", "probabilities"]


def export_metadata(info: dict[str, Any], head: DiagnosisHead | None) -> dict[str, str]:
    """String metadata stored in every export: preprocessing spec, outputs, labels, calibration."""
    meta = {
        SPEC_METADATA_KEY: json.dumps(spec_from_encoder_info(info).to_dict()),
        "mcgip.outputs": json.dumps(output_names(head)),
        "mcgip.not_for_clinical_use": "true",
    }
    if head is not None:
        meta["mcgip.classes"] = json.dumps(list(head.classes))
        meta["mcgip.temperature"] = repr(head.temperature)
        meta["mcgip.calibration"] = json.dumps(head.info.get("calibration", {}))
    return meta


def _as_tuple(out: torch.Tensor | tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    return out if isinstance(out, tuple) else (out,)


def export_torchscript(
    encoder: nn.Module, info: dict[str, Any], out_path: Path, head: DiagnosisHead | None = None
) -> Path:
    """Traced TorchScript (outputs as ``output_names``); metadata in the ``mcgip.json`` extra file.

    Checked against eager PyTorch on a 2-image batch.
    """
    module = _graph_module(encoder, info, head)
    size = int(info["image_size"])
    example = torch.rand(2, 1, size, size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad(), warnings.catch_warnings():
        # TorchScript is deprecated upstream but is still what many deployment runtimes load.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        traced = torch.jit.trace(module, example)
        expected = _as_tuple(module(example))
        got = _as_tuple(traced(example))
    if not all(torch.allclose(e, g, atol=1e-5, rtol=1e-5) for e, g in zip(expected, got, strict=True)):
        raise RuntimeError("TorchScript output differs from eager PyTorch")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    extra = {"mcgip.json": json.dumps(export_metadata(info, head))}
    traced.save(str(out_path), _extra_files=extra)
    return out_path


def export_onnx(
    encoder: nn.Module,
    info: dict[str, Any],
    out_path: Path,
    head: DiagnosisHead | None = None,
    *,
    rtol: float = 1e-4,
    prob_atol: float = 1e-5,
) -> Path:
    """ONNX with a dynamic batch axis: input ``image``, outputs ``embedding`` [and ``probabilities``].

    Verified with onnxruntime on batches of 1 and 3 against PyTorch: embeddings within ``rtol`` of the
    largest PyTorch feature magnitude (trained encoders' features reach the hundreds, where float32
    kernels of the two runtimes differ by ~1e-3 absolute), probabilities within ``prob_atol``.
    """
    module = _graph_module(encoder, info, head)
    names = output_names(head)
    size = int(info["image_size"])
    example = torch.rand(2, 1, size, size, generator=torch.Generator().manual_seed(0))
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad(), warnings.catch_warnings():
        # The TorchScript-based exporter needs no extra packages and supports dynamic_axes.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            module,
            (example,),
            str(out_path),
            dynamo=False,
            input_names=["image"],
            output_names=names,
            dynamic_axes={"image": {0: "batch"}, **{n: {0: "batch"} for n in names}},
            opset_version=17,
        )
    _add_onnx_metadata(out_path, export_metadata(info, head))
    errors, scale = check_onnx(module, out_path, size, names)
    if errors["embedding"] > rtol * max(scale, 1.0):
        raise RuntimeError(
            f"ONNX output differs from PyTorch by {errors['embedding']:.2e} (features up to {scale:.2e}; "
            f"allowed {rtol:.0e} relative)"
        )
    if errors.get("probabilities", 0.0) > prob_atol:
        raise RuntimeError(
            f"ONNX probabilities differ from PyTorch by {errors['probabilities']:.2e} "
            f"(allowed {prob_atol:.0e})"
        )
    return out_path


def _add_onnx_metadata(path: Path, props: dict[str, str]) -> None:
    """Store string key/value pairs in the ONNX file's ``metadata_props``."""
    import onnx

    model = onnx.load(str(path))
    for key, value in props.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))


def check_onnx(
    module: nn.Module, path: Path, size: int, names: list[str], batches: tuple[int, ...] = (1, 3)
) -> tuple[dict[str, float], float]:
    """Compare onnxruntime with PyTorch over random batches of the given sizes.

    Returns:
        ({output name: max abs difference}, max abs PyTorch embedding) over all batches.
    """
    import numpy as np
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    worst = dict.fromkeys(names, 0.0)
    scale = 0.0
    gen = torch.Generator().manual_seed(1)
    for n in batches:
        x = torch.rand(n, 1, size, size, generator=gen)
        with torch.no_grad():
            refs = [r.numpy() for r in _as_tuple(module(x))]
        got = session.run(names, {"image": x.numpy()})
        for name, ref, out in zip(names, refs, got, strict=True):
            worst[name] = max(worst[name], float(np.abs(ref - out).max()))
        scale = max(scale, float(np.abs(refs[0]).max()))
    return worst, scale


def export_safetensors(
    encoder: nn.Module, info: dict[str, Any], out_path: Path, head: DiagnosisHead | None = None
) -> Path:
    """Encoder state dict (normalisation not included) plus ``head.weight``, ``head.bias`` and
    ``head.temperature`` when there is a head; header metadata records backbone, input, labels."""
    from safetensors.torch import save_file

    out_path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in encoder.state_dict().items()}
    if head is not None:
        state["head.weight"] = torch.from_numpy(head.weight).float().contiguous()
        state["head.bias"] = torch.from_numpy(head.bias).float().contiguous()
        state["head.temperature"] = torch.tensor([head.temperature], dtype=torch.float32)
    meta = {
        "backbone": str(info["backbone"]),
        "image_size": str(info["image_size"]),
        "in_channels": "1",
        "normalize_mean": str(info["normalize"]["mean"]),
        "normalize_std": str(info["normalize"]["std"]),
        **export_metadata(info, head),
        "adaptation": "conv1=Conv2d(1,64,7,2,3,bias=False); fc=Identity",
    }
    save_file(state, str(out_path), metadata=meta)
    return out_path


def export_encoder(checkpoint: str | Path, fmt: str, out_path: str | Path) -> Path:
    """Export ``checkpoint`` (encoder.pt or step-*.pt) to ``fmt`` in ``FORMATS``, ``"card"`` or
    ``"card-md"``; a ``head.json`` beside the checkpoint adds the ``probabilities`` output."""
    encoder, info = load_encoder(checkpoint)
    head = head_beside(Path(checkpoint))
    out = Path(out_path)
    if fmt == "torchscript":
        return export_torchscript(encoder, info, out, head)
    if fmt == "onnx":
        return export_onnx(encoder, info, out, head)
    if fmt == "safetensors":
        return export_safetensors(encoder, info, out, head)
    if fmt in ("card", "card-md"):
        card = build_model_card(info, files={"encoder": Path(checkpoint)}, head=head)
        if fmt == "card":
            return write_json(out, card)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(card_markdown(card), encoding="utf-8")
        return out
    raise ValueError(f"format must be one of {(*FORMATS, 'card', 'card-md')} (got {fmt!r})")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def library_versions() -> dict[str, str]:
    """Versions of the libraries that determine the weights and exports."""
    out = {"python": platform.python_version()}
    for name in ("torch", "torchvision", "numpy", "onnx", "onnxruntime", "safetensors", "pillow"):
        try:
            out[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            continue
    return out


def build_model_card(
    info: dict[str, Any],
    *,
    files: dict[str, Path],
    metrics: dict[str, Any] | None = None,
    head: DiagnosisHead | None = None,
) -> dict[str, Any]:
    """Card: config, snapshot counts, gaze metric/threshold, metrics vs baseline, the diagnosis head
    (labels, calibration, cross-validated metrics with CIs against the baseline), intended use,
    limitations, library versions and checksums."""
    snapshot = info.get("snapshot", {})
    metrics = metrics if metrics is not None else info.get("metrics", {})
    return {
        "format": "mcgip-model-card",
        "version": 1,
        "name": info.get("config", {}).get("name", "mcgip"),
        "run": info.get("run"),
        "method": info.get("config", {}).get("method", {}).get("name"),
        "backbone": info["backbone"],
        "input": {
            "channels": 1,
            "size": info["image_size"],
            "scale": "[0, 1] after intensity mapping",
            "intensity": info.get("config", {}).get("data", {}).get("intensity"),
            "normalize": info["normalize"],
            "normalization_in_graph": {"torchscript": True, "onnx": True, "safetensors": False},
            "preprocessing": spec_from_encoder_info(info).to_dict(),
        },
        "adaptation": "torchvision ResNet with conv1=Conv2d(1, 64, 7, 2, 3, bias=False) and fc=Identity",
        "steps": info.get("steps"),
        "config": info.get("config"),
        "snapshot": {"counts": snapshot.get("counts", {}), "gaze": snapshot.get("gaze", {})},
        "gaze": snapshot.get("gaze", {}),
        "metrics": metrics,
        **diagnosis_section(head, (metrics or {}).get("diagnosis"), run=str(info.get("run") or "mcgip")),
        "libraries": library_versions(),
        "checksums": {name: {"file": p.name, "sha256": sha256(p)} for name, p in files.items() if p.exists()},
    }


def write_json(path: Path, data: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True, default=str), encoding="utf-8")
    return path
