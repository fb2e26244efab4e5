"""Files of a model version in the blob store, and their checksums."""

from __future__ import annotations

import hashlib
from pathlib import Path

#: Export format -> file name inside a model version's artifact folder.
EXPORT_FILES = {
    "onnx": "encoder.onnx",
    "torchscript": "encoder.torchscript.pt",
    "safetensors": "encoder.safetensors",
}
ENCODER_FILE = "encoder.pt"
CARD_FILE = "model_card.json"
CARD_MARKDOWN_FILE = "model_card.md"
#: The calibrated diagnosis head (``trainer.diagnosis.head``); absent when labels were insufficient.
HEAD_FILE = "head.json"
METRICS_FILE = "metrics.json"
CONFIG_FILE = "config.json"
SNAPSHOT_FILE = "snapshot.json"


def artifact_dir_for_job(job_id: int) -> str:
    """Blob-relative folder of the model version a retrain job produces (stable across attempts)."""
    return f"models/job-{job_id}"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checksums(folder: Path) -> dict[str, str]:
    """sha256 of every regular file in ``folder`` (file name -> hex digest)."""
    return {
        p.name: sha256_file(p) for p in sorted(folder.iterdir()) if p.is_file() and not p.name.startswith(".")
    }
