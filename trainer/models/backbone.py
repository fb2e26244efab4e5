"""torchvision ResNet encoders adapted to single-channel radiographs.

Adaptation (also what ``trainer.export`` documents for loading the safetensors weights):
* ``conv1`` is ``Conv2d(1, 64, 7, stride 2, padding 3, bias=False)`` instead of 3 input channels;
* ``fc`` is ``nn.Identity()``, so the encoder outputs the pooled features (512 for ResNet-18,
  2048 for ResNet-50).
Everything else is the stock ``torchvision.models.resnet18/50`` module tree, so its state dict loads
with ``strict=True`` into ``resnet18()`` after applying the same two replacements.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision import models

FEATURE_DIMS = {"resnet18": 512, "resnet50": 2048}


def build_backbone(name: str) -> tuple[nn.Module, int]:
    """A randomly initialised 1-channel ResNet without classifier.

    Args:
        name: ``"resnet18"`` or ``"resnet50"``.

    Returns:
        (encoder mapping (N, 1, H, W) -> (N, F), feature dimension F).
    """
    if name not in FEATURE_DIMS:
        raise ValueError(f"backbone must be one of {sorted(FEATURE_DIMS)} (got {name!r})")
    net = getattr(models, name)(weights=None)
    adapt_resnet(net)
    return net, FEATURE_DIMS[name]


def adapt_resnet(net: models.ResNet) -> models.ResNet:
    """Apply the 1-channel stem and remove the classifier, in place (see module docstring)."""
    old = net.conv1
    net.conv1 = nn.Conv2d(1, old.out_channels, kernel_size=7, stride=2, padding=3, bias=False)
    nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")
    net.fc = nn.Identity()
    return net


def rgb_stem_to_gray(weight: torch.Tensor) -> torch.Tensor:
    """Collapse an RGB ``conv1`` weight (64, 3, k, k) to grayscale (64, 1, k, k) by summing channels.

    A gray image replicated to 3 channels gives the same response, so e.g. locally stored ImageNet
    weights can initialise the 1-channel stem.
    """
    if weight.ndim != 4 or weight.shape[1] != 3:
        raise ValueError(f"expected an RGB conv weight (O, 3, k, k), got {tuple(weight.shape)}")
    return weight.sum(dim=1, keepdim=True)
