"""Reading grayscale radiographs (8 or 16 bit) into float tensors in [0, 1] for training views.

Decoding, intensity mapping and resizing are ``trainer.imaging`` (numpy, shared with the server);
this module only wraps their results as tensors.
"""

from __future__ import annotations

from pathlib import Path

import torch

from trainer.imaging import PreprocessSpec, read_values, to_unit


def read_grayscale(path: str | Path, intensity: str = "minmax", *, invert: bool = False) -> torch.Tensor:
    """Read an 8- or 16-bit grayscale image.

    Args:
        path: PNG (or any PIL-readable) file; RGB files are converted to luminance.
        intensity: ``"minmax"`` maps the 0.5-99.5 percentile window to [0, 1] (robust to the unused
            top bits of 12-bit data stored in 16-bit PNGs); ``"dtype"`` divides by 255 or 65535.
        invert: the source is shown inverted (DICOM MONOCHROME1): returns ``1 - x``.

    Returns:
        (1, H, W) float32 tensor in [0, 1].
    """
    values, full = read_values(path)
    if values.ndim != 2:
        raise ValueError(f"{path}: expected a single-channel image, got shape {values.shape}")
    unit = to_unit(values, PreprocessSpec(size=1, intensity=intensity), invert=invert, full_scale=full)
    return torch.from_numpy(unit).unsqueeze(0)
