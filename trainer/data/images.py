"""Reading grayscale radiograph PNGs (8 or 16 bit) into float tensors in [0, 1]."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image


def read_grayscale(path: str | Path, intensity: str = "minmax") -> torch.Tensor:
    """Read an 8- or 16-bit grayscale image.

    Args:
        path: PNG (or any PIL-readable) file; RGB files are converted to luminance.
        intensity: ``"minmax"`` maps the 0.5-99.5 percentile window to [0, 1] (robust to the unused
            top bits of 12-bit data stored in 16-bit PNGs); ``"dtype"`` divides by 255 or 65535.

    Returns:
        (1, H, W) float32 tensor in [0, 1].
    """
    with Image.open(path) as img:
        if img.mode in ("I;16", "I;16B", "I;16L", "I"):
            arr = np.asarray(img, dtype=np.float32)
            full = 65535.0
        else:
            arr = np.asarray(img.convert("L"), dtype=np.float32)
            full = 255.0
    if arr.ndim != 2:
        raise ValueError(f"{path}: expected a single-channel image, got shape {arr.shape}")
    if intensity == "dtype":
        out = arr / full
    elif intensity == "minmax":
        lo, hi = np.percentile(arr, [0.5, 99.5])
        out = (arr - lo) / (hi - lo) if hi > lo else np.zeros_like(arr)
    else:
        raise ValueError(f"intensity must be 'minmax' or 'dtype' (got {intensity!r})")
    return torch.from_numpy(np.clip(out, 0.0, 1.0).astype(np.float32)).unsqueeze(0)


def resize_shorter(image: torch.Tensor, size: int) -> torch.Tensor:
    """Resize (C, H, W) so the shorter side equals ``size`` (antialiased bilinear)."""
    h, w = image.shape[-2:]
    scale = size / min(h, w)
    if scale == 1.0:
        return image
    new = (max(1, round(h * scale)), max(1, round(w * scale)))
    return F.interpolate(image.unsqueeze(0), size=new, mode="bilinear", antialias=True, align_corners=False)[
        0
    ]
