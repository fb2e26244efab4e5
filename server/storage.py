"""Blob files under the data directory (images, checkpoints, exports), written atomically."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


class BlobStore:
    """Files addressed by paths relative to one root directory."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def path(self, relpath: str) -> Path:
        """Absolute path of ``relpath``, refusing anything that escapes the root."""
        full = (self.root / relpath).resolve()
        if full != self.root and self.root not in full.parents:
            raise ValueError(f"blob path escapes the store: {relpath!r}")
        return full

    def write(self, relpath: str, data: bytes) -> Path:
        """Write ``data`` so readers never see a half-written file."""
        target = self.path(relpath)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target

    def read(self, relpath: str) -> bytes:
        return self.path(relpath).read_bytes()

    def exists(self, relpath: str) -> bool:
        return self.path(relpath).exists()

    def remove_tree(self, relpath: str) -> None:
        shutil.rmtree(self.path(relpath), ignore_errors=True)
