"""Stored pixel values -> the model's ``(1, S, S)`` input in [0, 1], with numpy alone.

Steps (the same for training evaluation, exports, in-app embeddings and predictions):

1. **Intensity**: ``minmax`` maps the 0.5-99.5 percentile window to [0, 1] (robust to unused top bits
   of 12-bit data in 16-bit files, and invariant to any positive linear rescale, so stored values
   and DICOM modality values give the same result); ``dtype`` divides by the file's full scale.
   Sources shown inverted (DICOM MONOCHROME1, or a negative rescale slope) become ``1 - x``, so high
   input always means bright on screen.
2. **Resize** the shorter side to ``S`` with an antialiased bilinear (triangle) filter whose support
   grows with the reduction factor: the filter of Pillow and of ``torch.nn.functional.interpolate(
   mode="bilinear", antialias=True)``, written here as two dense weight matrices.
3. **Centre crop** to ``S x S``.

The normalisation ``(x - mean) / std`` is not applied here: the exported graphs (ONNX, TorchScript)
contain it, and ``PreprocessSpec`` records it for anyone using the bare weights.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from trainer.arrays import Float32Array

INTENSITIES = ("minmax", "dtype")
_WIDE_MODES = ("I;16", "I;16B", "I;16L", "I")


@dataclass(frozen=True)
class PreprocessSpec:
    """How pixels become model input; recorded in every export's metadata and model card.

    Attributes:
        size: side S of the square input.
        intensity: ``minmax`` (percentile window) or ``dtype`` (divide by the file's full scale).
        low_percentile, high_percentile: the ``minmax`` window.
        mean, std: normalisation applied inside the exported graphs after this function.
    """

    size: int
    intensity: str = "minmax"
    low_percentile: float = 0.5
    high_percentile: float = 99.5
    mean: float = 0.5
    std: float = 0.25

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ValueError(f"size must be positive (got {self.size})")
        if self.intensity not in INTENSITIES:
            raise ValueError(f"intensity must be one of {INTENSITIES} (got {self.intensity!r})")
        if not 0.0 <= self.low_percentile < self.high_percentile <= 100.0:
            raise ValueError(
                f"percentiles must satisfy 0 <= low < high <= 100 "
                f"(got {self.low_percentile}, {self.high_percentile})"
            )
        if self.std <= 0:
            raise ValueError(f"std must be positive (got {self.std})")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description, including the fixed steps for readers of the metadata."""
        return {
            **asdict(self),
            "resize": "shorter side to size, antialiased bilinear (triangle filter)",
            "crop": "centre",
            "range": "[0, 1]; inverted sources (MONOCHROME1) as 1 - x",
            "normalization": "(x - mean) / std, inside the ONNX and TorchScript graphs",
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> PreprocessSpec:
        """Inverse of ``to_dict`` (descriptive keys are ignored)."""
        return cls(
            size=int(raw["size"]),
            intensity=str(raw.get("intensity", "minmax")),
            low_percentile=float(raw.get("low_percentile", 0.5)),
            high_percentile=float(raw.get("high_percentile", 99.5)),
            mean=float(raw.get("mean", 0.5)),
            std=float(raw.get("std", 0.25)),
        )


def spec_from_encoder_info(info: dict[str, Any]) -> PreprocessSpec:
    """The spec an encoder was trained for, from the info saved beside its weights (``encoder.pt``)."""
    if "preprocessing" in info:
        return PreprocessSpec.from_dict(info["preprocessing"])
    data = (info.get("config") or {}).get("data") or {}
    norm = info.get("normalize") or {}
    return PreprocessSpec(
        size=int(info["image_size"]),
        intensity=str(data.get("intensity", "minmax")),
        mean=float(norm.get("mean", 0.5)),
        std=float(norm.get("std", 0.25)),
    )


def read_values(source: str | Path | bytes) -> tuple[Float32Array, float]:
    """Decode a PNG/JPEG (8 or 16 bit; colour becomes luminance) into stored values.

    Returns:
        ((H, W) float32 values, full scale of the file: 255 or 65535).
    """
    opened = io.BytesIO(source) if isinstance(source, bytes) else source
    with Image.open(opened) as img:
        if img.mode in _WIDE_MODES:
            return np.asarray(img, dtype=np.float32), 65535.0
        if img.mode == "F":
            return np.asarray(img, dtype=np.float32), 1.0
        return np.asarray(img.convert("L"), dtype=np.float32), 255.0


def to_unit(
    values: NDArray[Any],
    spec: PreprocessSpec,
    *,
    invert: bool = False,
    full_scale: float | None = None,
) -> Float32Array:
    """(H, W) stored values -> (H, W) float32 in [0, 1] (step 1)."""
    arr = np.asarray(values, dtype=np.float32)
    if arr.ndim != 2:
        raise ValueError(f"expected a single-channel (H, W) image, got shape {arr.shape}")
    if spec.intensity == "dtype":
        scale = (
            full_scale if full_scale is not None else (255.0 if float(arr.max(initial=0)) <= 255 else 65535.0)
        )
        unit = arr / np.float32(scale)
    else:
        lo, hi = np.percentile(arr, [spec.low_percentile, spec.high_percentile])
        unit = (arr - lo) / (hi - lo) if hi > lo else np.zeros_like(arr)
    unit = np.clip(unit, 0.0, 1.0).astype(np.float32)
    return (np.float32(1.0) - unit) if invert else unit


def _axis_weights(in_size: int, out_size: int) -> NDArray[np.float64]:
    """(out, in) antialiased bilinear resampling matrix, each row summing to 1.

    Output pixel i covers input coordinate ``scale * (i + 0.5)``; the triangle filter is stretched by
    the reduction factor when shrinking (antialiasing) and is plain bilinear when enlarging.
    """
    scale = in_size / out_size
    support = scale if scale >= 1.0 else 1.0
    invscale = 1.0 / scale if scale >= 1.0 else 1.0
    weights = np.zeros((out_size, in_size), dtype=np.float64)
    for i in range(out_size):
        center = scale * (i + 0.5)
        lo = max(int(center - support + 0.5), 0)
        hi = min(int(center + support + 0.5), in_size)
        taps = np.arange(lo, hi, dtype=np.float64)
        w = np.maximum(0.0, 1.0 - np.abs((taps - center + 0.5) * invscale))
        total = w.sum()
        if total > 0:
            weights[i, lo:hi] = w / total
    return weights


@lru_cache(maxsize=64)
def _resize_matrix(in_size: int, out_size: int) -> Float32Array:
    """``_axis_weights`` as read-only float32, built once per (in, out) pair (images share sizes)."""
    weights = _axis_weights(in_size, out_size).astype(np.float32)
    weights.setflags(write=False)
    return weights


def resize_shorter(unit: Float32Array, size: int) -> Float32Array:
    """Resize (H, W) so the shorter side is ``size`` (step 2); returns (H', W') float32."""
    h, w = unit.shape
    scale = size / min(h, w)
    new_h, new_w = max(size, round(h * scale)), max(size, round(w * scale))
    if (new_h, new_w) == (h, w):
        return unit.astype(np.float32)
    wy = _resize_matrix(h, new_h)
    wx = _resize_matrix(w, new_w)
    # Reduce the longer axis first: the dense products cost H*W*S, then S*H*S.
    out = wy @ (unit @ wx.T) if w >= h else (wy @ unit) @ wx.T
    return np.asarray(out, dtype=np.float32)


def center_crop(image: Float32Array, size: int) -> Float32Array:
    """(H, W) -> (size, size) centre crop (step 3); offsets round half to even as torchvision's."""
    h, w = image.shape
    top, left = int(round((h - size) / 2.0)), int(round((w - size) / 2.0))
    return image[top : top + size, left : left + size]


def model_input(
    values: NDArray[Any],
    spec: PreprocessSpec,
    *,
    invert: bool = False,
    full_scale: float | None = None,
) -> Float32Array:
    """(H, W) stored values -> (1, S, S) float32 model input in [0, 1].

    Args:
        values: stored pixel values (any numeric dtype; a positive linear map of modality values).
        spec: the model's preprocessing.
        invert: the source is shown inverted (MONOCHROME1 or a negative rescale slope).
        full_scale: the file's full scale, for ``intensity="dtype"``.
    """
    unit = to_unit(values, spec, invert=invert, full_scale=full_scale)
    return np.ascontiguousarray(center_crop(resize_shorter(unit, spec.size), spec.size))[None]


def model_inputs(
    images: Sequence[NDArray[Any]], spec: PreprocessSpec, inverts: Sequence[bool] | None = None
) -> Float32Array:
    """Stack of ``model_input`` over images: (N, 1, S, S) float32."""
    flags = list(inverts) if inverts is not None else [False] * len(images)
    if len(flags) != len(images):
        raise ValueError(f"{len(images)} images but {len(flags)} invert flags")
    if not images:
        return np.zeros((0, 1, spec.size, spec.size), dtype=np.float32)
    return np.stack([model_input(img, spec, invert=inv) for img, inv in zip(images, flags, strict=True)])
