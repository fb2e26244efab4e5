"""One entry per direction, used by the CLI: ``import_gaze`` and ``export_gaze``."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from server.interchange import bundle, egd_cxr, plain_csv, reflacx
from server.interchange.cases import CaseLookup
from server.interchange.exporter import ExportFilter, export_bundle
from server.interchange.images import CaseSource, ImageFolder
from server.interchange.importer import ImportReport, case_lookup, find_dataset, import_records
from server.interchange.labels import store_annotations, store_case_labels
from server.interchange.records import ImportFailed, RowError, SessionRecord
from server.interchange.wal_flush import flushing_wal
from server.models import Dataset


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
        intensity_scale: REFLACX window units -> modality units (None: 2^bits of each stored image).
        eye_gaze: Plain CSV points are eye gaze (flag bit 8).
        raw_gaze: Import raw gaze (EGD-CXR ``eye_gaze.csv``, REFLACX ``gaze_data/``), not fixations.
        label_map: EGD-CXR condition column -> reference label.
        diagnosis: REFLACX certainty labels -> reading diagnosis.
        strict_cases: A referenced image without a case fails the import (default: skipped, listed).
        images: Folder with the data set's image files (original sizes; cases with ``create_cases``).
        create_cases: Create missing cases from ``images`` through the upload path.
    """

    case: str | None = None
    master_sheet: Path | None = None
    fixation_hz: float = 60.0
    intensity_scale: float | None = None
    eye_gaze: bool = True
    raw_gaze: bool = False
    label_map: dict[str, str] = field(default_factory=dict)
    diagnosis: reflacx.DiagnosisRule = field(default_factory=reflacx.DiagnosisRule)
    strict_cases: bool = False
    images: Path | None = None
    create_cases: bool = False


def import_gaze(
    session: Session,
    fmt: ImportFormat,
    path: Path,
    *,
    dataset: str,
    reader: str | None,
    options: ImportOptions | None = None,
    case_source: CaseSource | None = None,
) -> ImportReport:
    """Parse ``path`` and store its sessions (and a data set's labels) inside the caller's transaction.

    Raises:
        ImportFailed: with every problem found; the caller must roll back.
        LookupError: the dataset does not exist.
        ValueError: an option combination cannot work (e.g. creating cases without an image folder).
    """
    # Large imports write hundreds of MB: let the disk start on them before the commit.
    with flushing_wal(session):
        return _import_gaze(
            session, fmt, path, dataset=dataset, reader=reader, options=options, case_source=case_source
        )


def _import_gaze(
    session: Session,
    fmt: ImportFormat,
    path: Path,
    *,
    dataset: str,
    reader: str | None,
    options: ImportOptions | None,
    case_source: CaseSource | None,
) -> ImportReport:
    options = options or ImportOptions()
    target = find_dataset(session, dataset)
    if not path.exists():
        raise ImportFailed([RowError(path, None, "no such file or folder")])
    report = ImportReport()
    folder = ImageFolder(options.images) if options.images is not None else None
    if options.create_cases and (folder is None or case_source is None):
        raise ValueError("creating cases needs --images DIR with the data set's image files")
    create = (
        folder.creator(session, target, case_source, report.missing_cases)
        if folder and case_source and options.create_cases
        else None
    )
    lookup = case_lookup(session, target, originals=folder.original_size if folder else None, create=create)
    if fmt in (ImportFormat.egd_cxr, ImportFormat.reflacx):
        return _import_dataset(session, target, fmt, path, reader, options, lookup, report)
    records: list[SessionRecord]
    if fmt is ImportFormat.bundle or (fmt is ImportFormat.csv and bundle.is_bundle(path)):
        records, errors = bundle.parse(path)
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
    return import_records(session, target, records, reader=reader, lookup=lookup, report=report)


def _import_dataset(
    session: Session,
    target: Dataset,
    fmt: ImportFormat,
    path: Path,
    reader: str | None,
    options: ImportOptions,
    lookup: CaseLookup,
    report: ImportReport,
) -> ImportReport:
    if fmt is ImportFormat.egd_cxr:
        parsed = egd_cxr.parse(
            path,
            lookup,
            master_sheet=options.master_sheet,
            fixation_hz=options.fixation_hz,
            raw_gaze=options.raw_gaze,
            label_map=options.label_map,
        )
    else:
        parsed = reflacx.parse(
            path,
            lookup,
            fixation_hz=options.fixation_hz,
            intensity_scale=options.intensity_scale,
            raw_gaze=options.raw_gaze,
            rule=options.diagnosis,
        )
    if parsed.errors:
        raise ImportFailed(parsed.errors)
    errors = store_case_labels(session, target, parsed.case_labels, lookup, report)
    if errors:
        raise ImportFailed(errors)
    import_records(session, target, parsed.sessions, reader=reader, lookup=lookup, report=report)
    # Building sessions may have found problems in the files (reported like parse errors).
    if parsed.errors:
        raise ImportFailed(parsed.errors)
    report.missing_cases |= {k: v for k, v in parsed.missing_cases.items() if k not in report.missing_cases}
    report.ignored |= parsed.ignored
    if options.strict_cases and report.missing_cases:
        raise ImportFailed(
            [
                RowError(Path(where), None, f"no case with external id {ref!r} in the dataset")
                for ref, where in report.missing_cases.items()
            ]
        )
    if not report.created and not report.skipped:
        raise ImportFailed([RowError(path, None, "no sessions found for cases of this dataset")])
    store_annotations(session, parsed.annotations, lookup, report)
    return report


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
