"""The McGIP gaze bundle: what ``mcgip export gaze`` writes and ``mcgip import gaze`` reads back.

Layout (see docs/gaze-interchange.md)::

    manifest.json                 format, version, columns, flag bits, one entry per session
    sessions/session-<id>.csv     the session's samples: header = the 18 column names
    sessions/session-<id>.json    {"session": <manifest entry>, "columns": [...], "samples": [[...]]}

Numbers are written in Python's shortest round-trip form, so reading a bundle gives back the
exact float64 samples that were stored.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import numpy as np

from server.interchange.plain_csv import read_full_samples
from server.interchange.records import LabelRecord, RowError, SessionRecord
from server.interchange.table import read_table
from server.reading.samples import COLUMNS, N_COLUMNS

FORMAT: Final = "mcgip-gaze-bundle"
VERSION: Final = 1
MANIFEST: Final = "manifest.json"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_bundle(path: Path) -> bool:
    return (path.is_dir() and (path / MANIFEST).is_file()) or path.name == MANIFEST


def _samples_of(
    folder: Path, entry: dict[str, Any], errors: list[RowError]
) -> tuple[np.ndarray, np.ndarray, Path] | None:
    files = entry.get("files") or {}
    if files.get("csv"):
        path = folder / str(files["csv"])
        table = read_table(path, errors)
        if table is None:
            return None
        missing = [c for c in COLUMNS if c not in table.header]
        if missing:
            errors.append(RowError(path, 1, f"missing column(s) {', '.join(missing)}"))
            return None
        return read_full_samples(table, errors), np.asarray(table.lines, dtype=np.int64), path
    if files.get("json"):
        path = folder / str(files["json"])
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            rows = doc["samples"]
            columns = doc.get("columns", list(COLUMNS))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            errors.append(RowError(path, None, f"not a session JSON file: {exc}"))
            return None
        if list(columns) != list(COLUMNS):
            errors.append(RowError(path, None, "columns differ from the 18 sample columns"))
            return None
        try:
            samples = np.asarray(rows, dtype=np.float64).reshape(-1, N_COLUMNS)
        except (ValueError, TypeError) as exc:
            errors.append(RowError(path, None, f"samples are not rows of 18 numbers: {exc}"))
            return None
        # JSON has no line per sample; report the sample's position instead (1-based).
        return samples, np.arange(1, samples.shape[0] + 1, dtype=np.int64), path
    errors.append(RowError(folder / MANIFEST, None, f"session {entry.get('id')} lists no csv or json file"))
    return None


def _time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def parse(path: Path) -> tuple[list[SessionRecord], list[RowError]]:
    """Sessions of a bundle (its folder or its manifest.json)."""
    folder = path.parent if path.name == MANIFEST else path
    manifest_path = folder / MANIFEST
    errors: list[RowError] = []
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return [], [RowError(manifest_path, None, f"cannot read the manifest: {exc}")]
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        return [], [RowError(manifest_path, None, f"not a {FORMAT} manifest")]
    if manifest.get("version") != VERSION:
        return [], [
            RowError(
                manifest_path, None, f"bundle version {manifest.get('version')!r}; this McGIP reads {VERSION}"
            )
        ]
    records = []
    for entry in manifest.get("sessions", []):
        found = _samples_of(folder, entry, errors)
        if found is None:
            continue
        samples, lines, file_path = found
        case_ref = entry.get("case_external_id")
        if not case_ref:
            errors.append(
                RowError(
                    manifest_path, None, f"session {entry.get('id')}: its case has no external id to match"
                )
            )
            continue
        label = entry.get("label")
        source_info = dict(entry.get("source_info") or {})
        records.append(
            SessionRecord(
                case_ref=str(case_ref),
                reader=entry.get("reader"),
                source=str(entry.get("source") or "import"),
                source_info=source_info,
                display_info=dict(entry.get("display_info") or {}),
                samples=samples,
                lines=lines,
                path=file_path,
                key=f"bundle:{manifest.get('origin', '')}:{entry.get('id')}",
                label=LabelRecord(label["label"], label.get("confidence"), label.get("finding_box"))
                if label
                else None,
                started_at=_time(entry.get("started_at")),
                finished_at=_time(entry.get("finished_at")),
            )
        )
    return records, errors
