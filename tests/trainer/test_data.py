"""Image reading, augmentations, and the resumable sampler."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from tests.trainer.fixtures import write_png
from trainer.config import AugmentConfig, DataConfig
from trainer.data.augment import PRESETS, resolve, train_transform
from trainer.data.dataset import ImageStore, TwoViewDataset
from trainer.data.images import read_grayscale
from trainer.data.sampler import EpochBatchSampler
from trainer.imaging import PreprocessSpec


def test_read_8_and_16_bit(tmp_path: Path) -> None:
    img = np.linspace(0, 1, 40 * 30).reshape(30, 40)
    write_png(tmp_path / "a.png", img, 8)
    write_png(tmp_path / "b.png", img, 16)
    a = read_grayscale(tmp_path / "a.png", "minmax")
    b = read_grayscale(tmp_path / "b.png", "minmax")
    assert a.shape == b.shape == (1, 30, 40)
    assert float((a - b).abs().max()) < 0.02
    # 12-bit data in a 16-bit container is dark when divided by 65535; minmax fixes that.
    assert float(read_grayscale(tmp_path / "b.png", "dtype").max()) < 0.07
    assert float(b.max()) == 1.0 and float(b.min()) == 0.0


def test_rgb_file_is_converted(tmp_path: Path) -> None:
    Image.fromarray(np.full((8, 8, 3), 100, np.uint8)).save(tmp_path / "c.png")
    assert read_grayscale(tmp_path / "c.png", "dtype").shape == (1, 8, 8)


def test_presets_and_overrides() -> None:
    s = resolve(AugmentConfig(preset="mammography", hflip_p=0.0))
    assert s.hflip_p == 0.0 and s.vflip_p == PRESETS["mammography"].vflip_p == 0.5
    assert resolve(AugmentConfig(preset="chest_xray")).vflip_p == 0.0


def test_views_are_seeded_per_sample_and_leave_global_rng(tmp_path: Path) -> None:
    for i in range(3):
        write_png(tmp_path / f"{i}.png", np.random.default_rng(i).random((48, 48)), 8)
    data = DataConfig(image_size=32)
    store = ImageStore([tmp_path / f"{i}.png" for i in range(3)], load_size=40, intensity="minmax")
    ds = TwoViewDataset(store, train_transform(resolve(AugmentConfig(preset="synthetic")), data))
    torch.manual_seed(0)
    before = torch.get_rng_state()
    v1, v2, idx = ds[(1, 1234)]
    assert torch.equal(torch.get_rng_state(), before)
    assert v1.shape == (1, 32, 32) and idx == 1
    assert not torch.equal(v1, v2)  # two different augmentations
    w1, w2, _ = ds[(1, 1234)]
    assert torch.equal(v1, w1) and torch.equal(v2, w2)
    assert not torch.equal(ds[(1, 99)][0], v1)
    spec = PreprocessSpec(size=32)
    ev = store.model_input(0, spec)
    assert ev.shape == (1, 32, 32) and torch.equal(ev, store.model_input(0, spec))


def test_sampler_resume_and_ranks() -> None:
    full = list(EpochBatchSampler(50, 4, seed=1, epoch=2))
    assert len(full) == 12
    assert list(EpochBatchSampler(50, 4, seed=1, epoch=2, start_batch=5)) == full[5:]
    assert list(EpochBatchSampler(50, 4, seed=1, epoch=3)) != full
    r0 = list(EpochBatchSampler(50, 4, seed=1, epoch=2, rank=0, world_size=2))
    r1 = list(EpochBatchSampler(50, 4, seed=1, epoch=2, rank=1, world_size=2))
    assert len(r0) == len(r1) == 6
    seen = [i for batch in r0 + r1 for i, _ in batch]
    assert len(seen) == len(set(seen)) == 48
    # The two ranks' batch b together are the single-process global batch of size 8.
    single8 = list(EpochBatchSampler(50, 8, seed=1, epoch=2))
    assert [x for x, _ in r0[0] + r1[0]] == [x for x, _ in single8[0]]
