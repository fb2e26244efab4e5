"""Tiny class-structured radiograph-like images and gaze pair graphs for trainer tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from trainer.data.snapshot import Snapshot, make_snapshot, save_snapshot

CLASSES = ("normal", "blob", "ring", "dots")


def render(label: str, seed: int, size: int = 40) -> np.ndarray:
    """(size, size) float image in [0, 1]: textured background plus a class-specific finding."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    img = 0.35 + 0.1 * np.sin(xx / (3 + rng.random() * 3)) * np.cos(yy / (4 + rng.random() * 3))
    img += rng.normal(0, 0.03, (size, size))
    cx, cy = rng.uniform(size * 0.3, size * 0.7, 2)
    r = size * rng.uniform(0.12, 0.2)
    d = np.hypot(xx - cx, yy - cy)
    if label == "blob":
        img += 0.45 * np.exp(-(d**2) / (2 * r**2))
    elif label == "ring":
        img += 0.45 * np.exp(-((d - r) ** 2) / 2.0)
    elif label == "dots":
        for _ in range(7):
            px, py = cx + rng.normal(0, r * 0.6), cy + rng.normal(0, r * 0.6)
            img += 0.5 * np.exp(-((xx - px) ** 2 + (yy - py) ** 2) / 1.5)
    return np.clip(img, 0, 1)


def write_png(path: Path, image: np.ndarray, bits: int) -> None:
    if bits == 8:
        Image.fromarray((image * 255).round().astype(np.uint8)).save(path)
    else:  # 12-bit values in a 16-bit PNG, as radiograph exports often are
        Image.fromarray((image * 4095).round().astype(np.uint16)).save(path)


def build_snapshot(
    root: Path,
    n: int = 64,
    *,
    size: int = 40,
    seed: int = 0,
    pair_fraction: float = 0.5,
    noise_pairs: int = 0,
) -> tuple[Snapshot, Path]:
    """Write ``n`` PNGs (alternating 8/16 bit) and a manifest whose pairs link same-class cases.

    Returns:
        (snapshot, manifest path).
    """
    rng = np.random.default_rng(seed)
    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    cases, labels = [], []
    for i in range(n):
        label = CLASSES[i % len(CLASSES)]
        path = images / f"case{i:04d}.png"
        write_png(path, render(label, seed * 100_003 + i, size), 8 if i % 2 == 0 else 16)
        cases.append((f"case{i:04d}", path, label))
        labels.append(label)
    pairs = []
    for i in range(n):
        for j in range(i + 1, n):
            if labels[i] == labels[j] and rng.random() < pair_fraction:
                pairs.append((f"case{i:04d}", f"case{j:04d}", float(rng.uniform(0.9, 1.0))))
    for _ in range(noise_pairs):
        i, j = rng.choice(n, 2, replace=False)
        pairs.append((f"case{i:04d}", f"case{j:04d}", 0.9))
    snap = make_snapshot(
        cases,
        pairs,
        classes=CLASSES,
        metadata={
            "counts": {"sessions": 2 * n, "readers": 2},
            "gaze": {"metric": "moments", "threshold": 0.9},
        },
        split_seed=seed,
        test_fraction=0.25,
    )
    manifest = save_snapshot(snap, root / "snapshot.json")
    return snap, manifest
