"""Projection and prediction heads built from one small MLP part."""

from __future__ import annotations

from torch import nn


def mlp(
    in_dim: int,
    hidden_dim: int,
    out_dim: int,
    *,
    layers: int = 2,
    batch_norm: bool = True,
    last_bn: bool = False,
) -> nn.Sequential:
    """``layers`` linear layers with (BN +) ReLU between them.

    Args:
        in_dim, hidden_dim, out_dim: widths.
        layers: number of Linear layers (>= 2).
        batch_norm: BatchNorm1d after every hidden Linear.
        last_bn: non-affine BatchNorm1d on the output (SimSiam projector).

    Returns:
        Module mapping (N, in_dim) -> (N, out_dim).
    """
    if layers < 2:
        raise ValueError(f"layers must be >= 2 (got {layers})")
    parts: list[nn.Module] = []
    dim = in_dim
    for _ in range(layers - 1):
        parts.append(nn.Linear(dim, hidden_dim, bias=not batch_norm))
        if batch_norm:
            parts.append(nn.BatchNorm1d(hidden_dim))
        parts.append(nn.ReLU(inplace=True))
        dim = hidden_dim
    parts.append(nn.Linear(dim, out_dim, bias=not last_bn))
    if last_bn:
        parts.append(nn.BatchNorm1d(out_dim, affine=False))
    return nn.Sequential(*parts)
