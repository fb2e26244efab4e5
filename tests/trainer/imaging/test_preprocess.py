"""The shared model preprocessing against torch's antialiased resize and its own properties."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torchvision.transforms.v2 import functional as TF

from trainer.imaging import PreprocessSpec, center_crop, model_input, resize_shorter, to_unit


def torch_reference(values: np.ndarray, size: int, invert: bool = False) -> np.ndarray:
    """Percentile window in float64, torch antialiased bilinear resize, torchvision centre crop."""
    v = values.astype(np.float64)
    lo, hi = np.percentile(v, [0.5, 99.5])
    unit = np.clip((v - lo) / (hi - lo), 0, 1)
    if invert:
        unit = 1 - unit
    h, w = unit.shape
    s = size / min(h, w)
    new = (max(size, round(h * s)), max(size, round(w * s)))
    t = torch.from_numpy(unit.astype(np.float32))[None, None]
    if new != (h, w):
        t = F.interpolate(t, size=new, mode="bilinear", antialias=True, align_corners=False)
    return TF.center_crop(t[0], [size, size]).numpy()


@pytest.mark.parametrize("shape", [(300, 411), (97, 50), (64, 64), (40, 33), (513, 512)])
def test_matches_torch_antialiased_resize_and_crop(shape: tuple[int, int]) -> None:
    values = np.random.default_rng(sum(shape)).integers(0, 4096, shape).astype(np.uint16)
    got = model_input(values, PreprocessSpec(size=64))
    assert got.shape == (1, 64, 64) and got.dtype == np.float32
    assert np.abs(got - torch_reference(values, 64)).max() <= 1e-5


def test_window_is_invariant_to_positive_linear_rescale_and_invert_is_one_minus() -> None:
    values = np.random.default_rng(1).integers(0, 3000, (80, 120)).astype(np.float64)
    spec = PreprocessSpec(size=32)
    base = model_input(values, spec)
    assert np.abs(model_input(values * 2.5 - 1024, spec) - base).max() <= 1e-5
    assert np.abs(model_input(values, spec, invert=True) - (1 - base)).max() <= 1e-6
    # A negative slope shown as MONOCHROME2 looks like the inverted stored values.
    assert np.abs(model_input(-values, spec) - model_input(values, spec, invert=True)).max() <= 1e-5


def test_constant_image_and_dtype_intensity() -> None:
    spec = PreprocessSpec(size=8, intensity="dtype")
    flat = np.full((10, 12), 7, np.uint16)
    assert np.all(model_input(flat, PreprocessSpec(size=8)) == 0)
    out = to_unit(np.array([[0, 255], [51, 102]], np.uint8), spec, full_scale=255.0)
    np.testing.assert_allclose(out, [[0, 1], [0.2, 0.4]], atol=1e-7)
    assert resize_shorter(np.zeros((8, 8), np.float32), 8).shape == (8, 8)
    assert center_crop(np.zeros((10, 13), np.float32), 8).shape == (8, 8)


def test_spec_round_trip_and_validation() -> None:
    spec = PreprocessSpec(size=48, intensity="dtype", mean=0.4, std=0.3)
    assert PreprocessSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(ValueError, match="intensity"):
        PreprocessSpec(size=48, intensity="gamma")
    with pytest.raises(ValueError, match="percentiles"):
        PreprocessSpec(size=48, low_percentile=60, high_percentile=40)
    with pytest.raises(ValueError, match="shape"):
        model_input(np.zeros((4, 4, 3)), spec)
