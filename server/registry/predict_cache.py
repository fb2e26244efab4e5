"""Bounded caches for the predict path: preprocessed case tensors and each export's label metadata.

A stored case's pixels never change after ingest (``StoredImage.sha256`` is the hash of the pixel file
that is read), so its model input is a pure function of (content hash, shown-inverted flag,
``PreprocessSpec``). Caching it skips the file read, decode, percentile window and resize on every
later prediction of the same case by any model with the same spec. Bounded in bytes, least recently
used dropped first; ``max_bytes == 0`` disables it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import NamedTuple

import numpy as np

from trainer.arrays import Float32Array
from trainer.imaging import PreprocessSpec


class TensorKey(NamedTuple):
    """What a case's model input depends on."""

    content_sha256: str
    invert: bool
    spec: PreprocessSpec


class TensorCache:
    """Thread-safe LRU of (1, S, S) float32 model inputs, at most ``max_bytes`` in total."""

    def __init__(self, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0 (got {max_bytes})")
        self.max_bytes = max_bytes
        self._items: OrderedDict[TensorKey, Float32Array] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def nbytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: TensorKey) -> Float32Array | None:
        """The cached input (read-only array) or ``None``."""
        with self._lock:
            found = self._items.get(key)
            if found is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return found

    def put(self, key: TensorKey, tensor: Float32Array) -> None:
        """Keep a copy of ``tensor`` (made read-only so no caller can change a shared entry)."""
        size = int(tensor.nbytes)
        if size > self.max_bytes:
            return
        stored = np.array(tensor, dtype=np.float32, copy=True)
        stored.setflags(write=False)
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= int(old.nbytes)
            self._items[key] = stored
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, dropped = self._items.popitem(last=False)
                self._bytes -= int(dropped.nbytes)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0
