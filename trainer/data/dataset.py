"""Datasets over snapshot cases: two augmented views for training, one fixed view for evaluation."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import torch
from torch.utils.data import Dataset

from trainer.imaging import PreprocessSpec, model_input, read_values, resize_shorter, to_unit

Transform = Callable[[torch.Tensor], torch.Tensor]


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Run tiny per-image ops on one intra-op thread.

    On a busy machine a multi-threaded parallel region over a 48 x 48 image can wait a whole
    scheduler quantum for its second thread (GaussianBlur measured 40x slower); DataLoader workers
    already run single-threaded, this gives the main process the same behaviour.
    """
    n = torch.get_num_threads()
    if n == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


class ImageStore:
    """Decoded images for training views, resized once to ``load_size`` (shorter side) and optionally
    cached in memory; evaluation views come from ``model_input`` (the shared preprocessing).

    Training views are cached as float16 (half the memory of float32; [0, 1] values keep ~3
    significant digits); evaluation inputs are float32 straight from the file, as the server sees it.
    """

    def __init__(
        self,
        paths: Sequence[Path],
        *,
        load_size: int,
        intensity: str,
        cache: bool = True,
        inverts: Sequence[bool] | None = None,
    ) -> None:
        self.paths = list(paths)
        self.inverts = list(inverts) if inverts is not None else [False] * len(self.paths)
        if len(self.inverts) != len(self.paths):
            raise ValueError(f"{len(self.paths)} paths but {len(self.inverts)} invert flags")
        self.load_size = load_size
        self.intensity = intensity
        self.cache = cache
        self._cache: dict[int, torch.Tensor] = {}
        self._inputs: dict[tuple[int, PreprocessSpec], torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> torch.Tensor:
        """(1, H, W) float32 in [0, 1]."""
        hit = self._cache.get(index)
        if hit is not None:
            return hit.float()
        values, full = read_values(self.paths[index])
        spec = PreprocessSpec(size=self.load_size, intensity=self.intensity)
        unit = to_unit(values, spec, invert=self.inverts[index], full_scale=full)
        # Always round through float16 so cached and uncached reads give identical pixels.
        image = torch.from_numpy(resize_shorter(unit, self.load_size)).unsqueeze(0).half()
        if self.cache:
            self._cache[index] = image
        return image.float()

    def model_input(self, index: int, spec: PreprocessSpec) -> torch.Tensor:
        """(1, S, S) float32 in [0, 1]: ``trainer.imaging.model_input`` of the original file."""
        key = (index, spec)
        hit = self._inputs.get(key)
        if hit is not None:
            return hit
        values, full = read_values(self.paths[index])
        x = torch.from_numpy(model_input(values, spec, invert=self.inverts[index], full_scale=full))
        if self.cache:
            self._inputs[key] = x
        return x

    def preload(self) -> None:
        """Decode every image now (before DataLoader workers fork, so they share the cache)."""
        if self.cache:
            for i in range(len(self)):
                self[i]


class TwoViewDataset(Dataset[tuple[torch.Tensor, torch.Tensor, int]]):
    """Yields ``(view1, view2, index)`` for an item ``(index, aug_seed)`` from ``EpochBatchSampler``.

    ``index`` is the training-case index (position in ``indices``, the store indices used for training).

    Augmentation randomness comes from ``aug_seed`` alone (the global RNG is forked and restored), so
    a sample's views do not depend on worker count, prefetching or where a resumed run starts.
    """

    def __init__(self, store: ImageStore, transform: Transform, indices: Sequence[int] | None = None) -> None:
        self.store = store
        self.transform = transform
        self.indices = list(range(len(store))) if indices is None else list(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, item: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor, int]:
        index, aug_seed = item
        image = self.store[self.indices[index]]
        with torch.random.fork_rng(devices=[]), single_thread():
            torch.manual_seed(aug_seed)
            v1 = self.transform(image)
            v2 = self.transform(image)
        return v1, v2, index


class EvalDataset(Dataset[tuple[torch.Tensor, int]]):
    """Yields ``(input, index)``: the shared model preprocessing of each image, (1, S, S) in [0, 1]."""

    def __init__(self, store: ImageStore, spec: PreprocessSpec, indices: Sequence[int]) -> None:
        self.store = store
        self.spec = spec
        self.indices = list(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        index = self.indices[i]
        return self.store.model_input(index, self.spec), index
