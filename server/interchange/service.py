"""One entry per direction, used by the CLI: ``import_gaze`` and ``export_gaze``."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from server.interchange import bundle, egd_cxr, plain_csv, reflacx
from server.interchange.exporter import ExportFilter, export_bundle
from server.interchange.importer import ImportReport, case_lookup, find_dataset, import_records
from server.interchange.records import ImportFailed, RowError, SessionRecord


class ImportFormat(StrEnum):
    egd_cxr = "egd-cxr"
    reflacx = "reflacx"
    csv = "csv"
    bundle = "bundle"


@dataclass(frozen=True)
class ImportOptions:
    """Format-specific settings (defaults suit the public data sets).

    Attributes:
        case: External id of the case a plain CSV belongs to.
        master_sheet: EGD-CXR ``master_sheet.csv`` (found beside the file when None).
        fixation_hz: Rate at which fixation lists are stored as samples.
        intensity_scale: REFLACX window units -> modality units.
        eye_gaze: Plain CSV points are eye gaze (flag bit 8).
    """

    case: str | None = None
    master_sheet: Path | None = None
    fixation_hz: float = 60.0
    intensity_scale: float = 4096.0
    eye_gaze: bool = True


def import_gaze(
    session: Session,
    fmt: ImportFormat,
    path: Path,
    *,
    dataset: str,
    reader: str | None,
    options: ImportOptions | None = None,
) -> ImportReport:
    """Parse ``path`` and store its sessions in ``dataset`` inside the caller's transaction.

    Raises:
        ImportFailed: with every problem found; nothing was written.
        LookupError: the dataset does not exist.
    """
    options = options or ImportOptions()
    target = find_dataset(session, dataset)
    lookup = case_lookup(session, target)
    if not path.exists():
        raise ImportFailed([RowError(path, None, "no such file or folder")])
    records: list[SessionRecord]
    if fmt is ImportFormat.bundle or (fmt is ImportFormat.csv and bundle.is_bundle(path)):
        records, errors = bundle.parse(path)
    elif fmt is ImportFormat.egd_cxr:
        records, errors = egd_cxr.parse(
            path, lookup, master_sheet=options.master_sheet, fixation_hz=options.fixation_hz
        )
    elif fmt is ImportFormat.reflacx:
        records, errors = reflacx.parse(
            path, lookup, fixation_hz=options.fixation_hz, intensity_scale=options.intensity_scale
        )
    else:
        if options.case is None:
            raise ImportFailed([RowError(path, None, "a plain CSV needs the case: give --case EXTERNAL_ID")])
        records, errors = plain_csv.parse(
            path,
            options.case,
            lookup(options.case),
            fixation_hz=options.fixation_hz,
            eye_gaze=options.eye_gaze,
        )
    if errors:
        raise ImportFailed(errors)
    if not records:
        raise ImportFailed([RowError(path, None, "no sessions found")])
    return import_records(session, target, records, reader=reader, lookup=lookup)


def export_gaze(
    session: Session,
    out: Path,
    *,
    dataset: str | None = None,
    reader: str | None = None,
    session_ids: list[int] | None = None,
    csv: bool = True,
    json_files: bool = True,
) -> dict[str, Any]:
    """Write a bundle of the matching sessions to ``out``; returns the manifest."""
    dataset_id = find_dataset(session, dataset).id if dataset is not None else None
    filters = ExportFilter(dataset_id=dataset_id, reader=reader, session_ids=session_ids or ())
    return export_bundle(session, out, filters, csv=csv, json_files=json_files)
