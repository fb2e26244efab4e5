"""Radiograph augmentations with ``torchvision.transforms.v2``.

Radiographs are single-channel and their diagnostic content is in texture and shape, so colour
augmentations are replaced by mild intensity changes (brightness, contrast, gamma, i.e. different
exposure / window settings), plus crops, flips, small rotations, blur and sensor-like noise.
Per-dataset presets are defined in ``PRESETS``; every field of ``AugmentConfig`` overrides its preset.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch
from torch import nn
from torchvision.transforms import v2

from trainer.config import AugmentConfig, DataConfig


@dataclass(frozen=True)
class AugmentSettings:
    """Concrete augmentation parameters (probabilities in [0, 1], ranges as (low, high))."""

    crop_scale: tuple[float, float]
    crop_ratio: tuple[float, float]
    hflip_p: float
    vflip_p: float
    rotation_deg: float
    brightness: float
    contrast: float
    gamma: tuple[float, float]
    blur_p: float
    blur_sigma: tuple[float, float]
    noise_std: float


_RADIOGRAPH = AugmentSettings(
    crop_scale=(0.3, 1.0),
    crop_ratio=(3 / 4, 4 / 3),
    hflip_p=0.5,
    vflip_p=0.0,
    rotation_deg=10.0,
    brightness=0.2,
    contrast=0.2,
    gamma=(0.8, 1.25),
    blur_p=0.3,
    blur_sigma=(0.1, 1.5),
    noise_std=0.0,
)

PRESETS: dict[str, AugmentSettings] = {
    "radiograph": _RADIOGRAPH,
    # Chest films: anatomy is upright, so no vertical flips; crops keep most of the lung fields.
    "chest_xray": replace(_RADIOGRAPH, crop_scale=(0.4, 1.0), rotation_deg=10.0),
    # Mammograms: left/right and CC/MLO orientation vary, so both flips; masses can be small.
    "mammography": replace(_RADIOGRAPH, vflip_p=0.5, rotation_deg=15.0, crop_scale=(0.3, 1.0)),
    # Demo generator: orientation-free, stronger exposure variation and sensor noise.
    "synthetic": replace(
        _RADIOGRAPH,
        crop_scale=(0.35, 1.0),
        vflip_p=0.5,
        rotation_deg=15.0,
        brightness=0.3,
        contrast=0.3,
        gamma=(0.7, 1.4),
        blur_p=0.5,
        blur_sigma=(0.1, 1.0),
        noise_std=0.02,
    ),
}


def resolve(config: AugmentConfig) -> AugmentSettings:
    """Preset values with every non-None field of ``config`` applied on top."""
    base = PRESETS[config.preset]
    overrides = {
        f.name: getattr(config, f.name)
        for f in fields(AugmentSettings)
        if getattr(config, f.name) is not None
    }
    return replace(base, **overrides)


class RandomGamma(nn.Module):
    """``x ** g`` with ``g`` log-uniform in ``gamma``; input in [0, 1], shape (..., H, W)."""

    def __init__(self, gamma: tuple[float, float]) -> None:
        super().__init__()
        if not 0 < gamma[0] <= gamma[1]:
            raise ValueError(f"gamma must be an increasing positive pair (got {gamma})")
        self.log_lo, self.log_hi = (
            float(torch.log(torch.tensor(gamma[0]))),
            float(torch.log(torch.tensor(gamma[1]))),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = torch.exp(torch.empty(()).uniform_(self.log_lo, self.log_hi))
        return x.clamp(min=0.0).pow(g)


def train_transform(settings: AugmentSettings, data: DataConfig) -> v2.Compose:
    """One random view: (1, H, W) float in [0, 1] -> (1, S, S) normalised, S = data.image_size."""
    size = data.image_size
    steps: list[nn.Module] = [
        v2.RandomResizedCrop(size, scale=settings.crop_scale, ratio=settings.crop_ratio, antialias=True)
    ]
    if settings.hflip_p > 0:
        steps.append(v2.RandomHorizontalFlip(settings.hflip_p))
    if settings.vflip_p > 0:
        steps.append(v2.RandomVerticalFlip(settings.vflip_p))
    if settings.rotation_deg > 0:
        steps.append(v2.RandomRotation(settings.rotation_deg))
    if settings.brightness > 0 or settings.contrast > 0:
        steps.append(v2.ColorJitter(brightness=settings.brightness, contrast=settings.contrast))
    if settings.gamma != (1.0, 1.0):
        steps.append(RandomGamma(settings.gamma))
    if settings.blur_p > 0:
        kernel = max(3, (size // 10) | 1)  # odd kernel ~10% of the crop, as SimCLR
        steps.append(v2.RandomApply([v2.GaussianBlur(kernel, sigma=settings.blur_sigma)], p=settings.blur_p))
    if settings.noise_std > 0:
        steps.append(v2.GaussianNoise(sigma=settings.noise_std, clip=True))
    steps.append(v2.Normalize([data.mean], [data.std]))
    return v2.Compose(steps)
