"""Storing a data set's case labels and annotations next to its imported sessions.

Case labels go where evaluation reads them: ``Case.reference_label`` (never shown to readers) and
``Case.attributes`` (further labels, keyed by source). A reference label already set to another
value is kept and reported, never silently overwritten. Annotations are converted from the data
set's original image pixels to the stored image's pixels.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.interchange.cases import CaseImage
from server.interchange.importer import ImportReport
from server.interchange.records import AnnotationRecord, CaseLabelRecord, RowError
from server.models import Annotation, Case, Dataset

logger = logging.getLogger(__name__)


def store_case_labels(
    session: Session,
    dataset: Dataset,
    labels: Sequence[CaseLabelRecord],
    lookup: Callable[[str], CaseImage | None],
    report: ImportReport,
) -> list[RowError]:
    """Set reference labels and attributes of the dataset's cases named in ``labels``.

    Returns:
        Problems (a reference label outside the dataset's label set); nothing is changed for those.
    """
    errors: list[RowError] = []
    images = {record.case_ref: lookup(record.case_ref) for record in labels}
    ids = [image.case_id for image in images.values() if image is not None]
    # One query for all the cases (a data set labels thousands).
    cases = {c.id: c for c in session.scalars(select(Case).where(Case.id.in_(ids)))} if ids else {}
    for record in labels:
        image = images[record.case_ref]
        if image is None:
            continue
        if record.reference_label is not None and record.reference_label not in dataset.label_set:
            errors.append(
                RowError(
                    record.path,
                    record.line,
                    f"reference label {record.reference_label!r} is not in the label set {dataset.label_set} "
                    "(map the data set's labels with --label-map COLUMN=LABEL)",
                )
            )
            continue
        case = cases[image.case_id]
        changed = False
        if record.reference_label is not None:
            if case.reference_label is None:
                case.reference_label = record.reference_label
                changed = True
            elif case.reference_label != record.reference_label:
                report.label_conflicts[record.case_ref] = (
                    f"kept {case.reference_label!r}; the data set says {record.reference_label!r}"
                )
        merged = case.attributes | record.attributes
        if merged != case.attributes:
            case.attributes = merged
            changed = True
        report.labels_set += int(changed)
    session.flush()
    return errors


def store_annotations(
    session: Session,
    annotations: Sequence[AnnotationRecord],
    lookup: Callable[[str], CaseImage | None],
    report: ImportReport,
) -> None:
    """Store annotations of cases in the dataset (those already stored are skipped)."""
    for record in annotations:
        image = lookup(record.case_ref)
        if image is None:
            continue
        original = record.original or image.original
        where = f"{record.case_ref} {record.key}"
        if original is None:
            report.annotations_skipped[where] = (
                "original image size unknown (give --images with the DICOMs, "
                "or upload the case from its DICOM)"
            )
            continue
        exists = session.scalar(
            select(Annotation.id).where(
                Annotation.case_id == image.case_id, Annotation.source_key == record.key
            )
        )
        if exists is not None:
            continue
        sx, sy = image.width / original[0], image.height / original[1]
        x0, y0, x1, y1 = record.box
        session.add(
            Annotation(
                case_id=image.case_id,
                session_id=report.session_ids.get(record.session_key) if record.session_key else None,
                shape=record.shape,
                label=record.label[:128],
                x0=x0 * sx,
                y0=y0 * sy,
                x1=x1 * sx,
                y1=y1 * sy,
                source=record.source,
                source_key=record.key,
                attributes=record.attributes
                | {"original_box": list(record.box), "original_size": list(original)},
            )
        )
        report.annotations += 1
    session.flush()
