"""``mcgip export gaze``: sessions to a bundle folder (CSV and/or JSON per session + manifest)."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.interchange.bundle import FORMAT, MANIFEST, VERSION, sha256_of
from server.models import Case, Dataset, DiagnosisLabel, ReadingSession, SessionStatus, User
from server.reading import samples as codec
from server.reading.service import session_samples

logger = logging.getLogger(__name__)

FLAG_BITS = {
    "1": "valid (the source had a gaze point)",
    "2": "on the image",
    "4": "tab visible",
    "8": "eye gaze (not mouse or replay)",
}


@dataclass(frozen=True)
class ExportFilter:
    dataset_id: int | None = None
    reader: str | None = None
    session_ids: Sequence[int] = ()
    status: SessionStatus | None = None


def _utc(value: datetime | None) -> str | None:
    if value is None:
        return None
    return (value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)).isoformat()


def _entry(
    reading: ReadingSession, case: Case, dataset: Dataset, reader: User, label: DiagnosisLabel | None
) -> dict[str, Any]:
    return {
        "id": reading.id,
        "dataset": dataset.name,
        "case_id": case.id,
        "case_external_id": case.external_id,
        "reader": reader.username,
        "source": reading.source,
        "source_info": reading.source_info,
        "display_info": reading.display_info,
        "status": reading.status.value,
        "started_at": _utc(reading.started_at),
        "finished_at": _utc(reading.finished_at),
        "label": (
            {"label": label.label, "confidence": label.confidence, "finding_box": label.finding_box}
            if label is not None
            else None
        ),
        "sample_count": reading.sample_count,
    }


def export_bundle(
    session: Session, out: Path, filters: ExportFilter, *, csv: bool = True, json_files: bool = True
) -> dict[str, Any]:
    """Write the matching sessions to ``out`` (created; must be empty or absent).

    Args:
        session: ORM session (read only).
        out: Bundle folder.
        filters: Which sessions.
        csv: Write ``sessions/session-<id>.csv``.
        json_files: Write ``sessions/session-<id>.json``.

    Returns:
        The manifest written to ``out/manifest.json``.

    Raises:
        FileExistsError: ``out`` exists and is not empty.
        ValueError: neither CSV nor JSON requested.
    """
    if not (csv or json_files):
        raise ValueError("choose at least one of CSV and JSON")
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty")
    query = (
        select(ReadingSession, Case, Dataset, User)
        .join(Case, Case.id == ReadingSession.case_id)
        .join(Dataset, Dataset.id == Case.dataset_id)
        .join(User, User.id == ReadingSession.reader_id)
        .order_by(ReadingSession.id)
    )
    if filters.dataset_id is not None:
        query = query.where(Case.dataset_id == filters.dataset_id)
    if filters.reader is not None:
        query = query.where(User.username == filters.reader)
    if filters.session_ids:
        query = query.where(ReadingSession.id.in_(list(filters.session_ids)))
    if filters.status is not None:
        query = query.where(ReadingSession.status == filters.status)
    rows = session.execute(query).all()
    labels = {
        label.session_id: label
        for label in session.scalars(
            select(DiagnosisLabel).where(DiagnosisLabel.session_id.in_([r[0].id for r in rows]))
        )
    }
    folder = out / "sessions"
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for reading, case, dataset, reader in rows:
        entry = _entry(reading, case, dataset, reader, labels.get(reading.id))
        data = session_samples(session, reading.id)
        files: dict[str, str] = {}
        sums: dict[str, str] = {}
        if csv:
            path = folder / f"session-{reading.id}.csv"
            with path.open("w", encoding="utf-8", newline="") as handle:
                handle.writelines(codec.csv_lines(data))
            files["csv"] = path.relative_to(out).as_posix()
            sums["csv"] = sha256_of(path)
        if json_files:
            path = folder / f"session-{reading.id}.json"
            doc = {"session": entry, "columns": list(codec.COLUMNS), "samples": data.tolist()}
            path.write_text(json.dumps(doc, allow_nan=False), encoding="utf-8")
            files["json"] = path.relative_to(out).as_posix()
            sums["json"] = sha256_of(path)
        entries.append({**entry, "files": files, "sha256": sums})
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "created_at": datetime.now(UTC).isoformat(),
        "origin": f"mcgip-export-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%f')}",
        "columns": list(codec.COLUMNS),
        "flags": FLAG_BITS,
        "time_unit": "ms",
        "coordinates": "image_x/image_y in image pixels (x = column, y = row); screen columns in CSS px",
        "sessions": entries,
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2, allow_nan=False), encoding="utf-8")
    logger.info("exported %d sessions to %s", len(entries), out)
    return manifest
