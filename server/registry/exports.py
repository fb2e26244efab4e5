"""Verifying a model version's files: present, and matching the checksum recorded at registration.

The download route, ``mcgip export model`` and the worker's ``embed``/``export``/``evaluate`` jobs
all read a version's files through :func:`verified_artifact`; missing exports are produced by the
trainer subprocess in one place, ``server.worker.handlers.retrain.export_missing``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from server.exceptions import Conflict, NotFound
from server.models import ModelVersion
from server.registry.artifacts import EXPORT_FILES, sha256_file
from server.storage import BlobStore

_FORMAT_OF = {name: fmt for fmt, name in EXPORT_FILES.items()}


class ArtifactMissing(NotFound):
    """The version has no such file (an export can be re-created with an ``export`` job)."""


class ChecksumMismatch(Conflict):
    """The file differs from the one registered with the version."""


def verified_artifact(
    blobs: BlobStore, version: ModelVersion, name: str, *, digest_of: Callable[[Path], str] = sha256_file
) -> tuple[Path, str]:
    """The path and sha256 of one of ``version``'s files, checked against its recorded checksum.

    Args:
        name: file name in the version's artifact folder (``EXPORT_FILES`` values, ``encoder.pt``...).
        digest_of: how to hash the file (the download route caches digests).

    Raises:
        ArtifactMissing: the file is not there.
        ChecksumMismatch: its sha256 differs from the one recorded when the version was registered.
    """
    path = blobs.path(f"{version.artifact_dir}/{name}")
    fmt = _FORMAT_OF.get(name)
    if not path.exists():
        if fmt is not None:
            raise ArtifactMissing(
                f"model {version.id} has no {fmt} export; queue an export job to re-create it"
            )
        raise ArtifactMissing(f"model {version.id} has no {name}")
    digest = digest_of(path)
    recorded = version.checksums.get(name)
    if recorded is not None and recorded != digest:
        raise ChecksumMismatch(f"the {fmt or name} file of model {version.id} fails its checksum")
    return path, digest
