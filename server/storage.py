"""Blob files under the data directory (images, checkpoints, exports), written atomically."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable
from concurrent.futures import Executor
from pathlib import Path


def _fsync_path(path: Path) -> None:
    """fsync a file or a folder by path (a folder's fsync makes the names in it durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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

    def write(self, relpath: str, data: bytes, *, sync: bool = True) -> Path:
        """Write ``data`` so readers never see a half-written file.

        With ``sync`` (the default) the file's content is on disk when this returns; without it the
        caller must :meth:`sync_trees` the folder before anything refers to the file durably.
        """
        target = self.path(relpath)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                if sync:
                    fh.flush()
                    os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target

    def sync_trees(self, relpaths: Iterable[str], pool: Executor | None = None) -> None:
        """Make the files of folders ``relpaths`` (not recursive) and the folder entries durable.

        Files are fsynced concurrently on ``pool`` when given: the file system then commits many of them
        in one journal transaction instead of one each, which is what makes batched writes cheaper.
        """
        folders = [self.path(relpath) for relpath in relpaths]
        files = [entry for folder in folders for entry in folder.iterdir() if entry.is_file()]
        # Files first, then the folders holding their names, then the folders' parents (new folders).
        parents = sorted({folder.parent for folder in folders})
        for group in (files, folders, parents):
            if pool is None:
                for target in group:
                    _fsync_path(target)
            else:
                list(pool.map(_fsync_path, group))

    def read(self, relpath: str) -> bytes:
        return self.path(relpath).read_bytes()

    def exists(self, relpath: str) -> bool:
        return self.path(relpath).exists()

    def remove_tree(self, relpath: str) -> None:
        shutil.rmtree(self.path(relpath), ignore_errors=True)
