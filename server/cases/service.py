"""Cases: ingest uploads into de-identified stored images, list and scope them per user."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.datasets.settings import DatasetSettings
from server.exceptions import Conflict, Invalid, NotFound
from server.imaging import IngestedImage, ingest_image
from server.models import Assignment, Case, Dataset, StoredImage, User
from server.storage import BlobStore

logger = logging.getLogger(__name__)

DISPLAY_FILE = "display.png"
PIXELS_FILE = "pixels16.png"
THUMBNAIL_FILE = "thumbnail.png"
DICOM_FILE = "deidentified.dcm"


@dataclass(frozen=True)
class CaseFilters:
    dataset_id: int | None = None
    reader_id: int | None = None
    reference_label: str | None = None
    search: str | None = None


def is_assigned(session: Session, case_id: int, reader_id: int) -> bool:
    stmt = select(Assignment.id).where(Assignment.case_id == case_id, Assignment.reader_id == reader_id)
    return session.scalar(stmt) is not None


def visible_case(session: Session, user: User, case_id: int) -> Case:
    """The case if ``user`` may see it: admins see all, readers only their worklist.

    Raises:
        NotFound: the case does not exist or is not on the reader's worklist (a reader
            cannot tell the two apart).
    """
    case = session.get(Case, case_id)
    if case is None or (not user.is_admin and not is_assigned(session, case_id, user.id)):
        raise NotFound(f"case {case_id} not found")
    return case


class DuplicateImage(Conflict):
    """The dataset already holds a case with the same stored (de-identified) pixels."""

    def __init__(self, duplicate_of: int) -> None:
        super().__init__(
            f"the dataset already has this image (case {duplicate_of})", extra={"duplicate_of": duplicate_of}
        )
        self.duplicate_of = duplicate_of


def find_duplicate(session: Session, dataset_id: int, digest: str) -> int | None:
    """The case of the dataset whose stored pixels have SHA-256 ``digest``, if any."""
    return session.scalar(
        select(StoredImage.case_id)
        .join(Case, Case.id == StoredImage.case_id)
        .where(Case.dataset_id == dataset_id, StoredImage.sha256 == digest)
        .order_by(StoredImage.case_id)
        .limit(1)
    )


def create_case(
    session: Session,
    blobs: BlobStore,
    *,
    dataset: Dataset,
    data: bytes,
    max_pixels: int,
    uid_salt: bytes,
    uploaded_by: User | None,
    external_id: str | None = None,
    title: str = "",
    reference_label: str | None = None,
    refuse_duplicates: bool = False,
) -> Case:
    """Decode, de-identify and store an uploaded image as a new case.

    With ``refuse_duplicates`` an image whose de-identified pixels the dataset already holds is
    refused (:class:`DuplicateImage`): the same study uploaded twice, or under two file names.

    Files are written before the row is flushed and removed again if the flush fails, so neither
    orphan rows nor (for long) orphan files remain.

    Raises:
        Unsupported: an unsupported type.
        TooLarge: an image over the pixel limit.
        Conflict: a duplicate external id; DuplicateImage: a duplicate image (``refuse_duplicates``).
        Invalid: a corrupt file or an unknown reference label.
    """
    if reference_label is not None and reference_label not in dataset.label_set:
        raise Invalid(
            f"reference label {reference_label!r} is not in dataset {dataset.name!r}'s label set",
        )
    if external_id is not None:
        clash = session.scalar(
            select(Case.id).where(Case.dataset_id == dataset.id, Case.external_id == external_id)
        )
        if clash is not None:
            raise Conflict(f"dataset already has a case with external id {external_id!r}")
    # Its errors are domain errors: 415 unsupported type, 413 too many pixels, 422 corrupt.
    image = ingest_image(data, max_pixels=max_pixels, uid_salt=uid_salt)
    check_burned_in_annotation(image.metadata, dataset)
    return store_case(
        session,
        blobs,
        dataset=dataset,
        image=image,
        uploaded_by=uploaded_by,
        external_id=external_id,
        title=title,
        reference_label=reference_label,
        refuse_duplicates=refuse_duplicates,
    )


def store_case(
    session: Session,
    blobs: BlobStore,
    *,
    dataset: Dataset,
    image: IngestedImage,
    uploaded_by: User | None,
    external_id: str | None = None,
    title: str = "",
    reference_label: str | None = None,
    sync: bool = True,
    refuse_duplicates: bool = False,
) -> Case:
    """Write an ingested image's files and add its case and stored-image rows (flushed, not committed).

    Files are written before the row is flushed and removed again if the flush fails. With
    ``sync=False`` the files are not fsynced: the caller must make the case's folder durable
    (:meth:`BlobStore.sync_trees`) before it commits, which lets a batch of cases share the wait.
    With ``refuse_duplicates`` an image the dataset already holds raises :class:`DuplicateImage`.
    """
    # Content-addressed by the *stored* (de-identified) pixels; never by the raw upload, which may hold PHI.
    digest = hashlib.sha256(image.pixels_png16).hexdigest()
    if refuse_duplicates and (duplicate_of := find_duplicate(session, dataset.id, digest)) is not None:
        raise DuplicateImage(duplicate_of)
    case = Case(
        dataset_id=dataset.id,
        external_id=external_id,
        title=title,
        reference_label=reference_label,
        uploaded_by_id=uploaded_by.id if uploaded_by else None,
    )
    session.add(case)
    session.flush()
    storage_dir = f"images/{case.id:08d}-{digest[:12]}"
    try:
        blobs.write(f"{storage_dir}/{DISPLAY_FILE}", image.display_png, sync=sync)
        blobs.write(f"{storage_dir}/{PIXELS_FILE}", image.pixels_png16, sync=sync)
        blobs.write(f"{storage_dir}/{THUMBNAIL_FILE}", image.thumbnail_png, sync=sync)
        if image.deidentified_dicom is not None:
            blobs.write(f"{storage_dir}/{DICOM_FILE}", image.deidentified_dicom, sync=sync)
        session.add(
            StoredImage(
                case_id=case.id,
                format=image.format.value,
                width=image.width,
                height=image.height,
                bits_stored=image.bits_stored,
                photometric=image.photometric,
                modality=image.modality,
                value_offset=image.value_offset,
                value_scale=image.value_scale,
                window_center=image.window_center,
                window_width=image.window_width,
                invert=image.invert,
                sha256=digest,
                storage_dir=storage_dir,
                has_dicom=image.deidentified_dicom is not None,
                meta=image.metadata,
            )
        )
        session.flush()
    except BaseException:
        blobs.remove_tree(storage_dir)
        raise
    session.refresh(case)
    logger.info("stored case %s (%s %dx%d)", case.id, image.format.value, image.width, image.height)
    return case


def burned_in_annotation(meta: dict[str, Any] | None) -> bool:
    """Whether a stored image's DICOM declared text burned into its pixels (BurnedInAnnotation=YES)."""
    return meta is not None and meta.get("burned_in_annotation") == "YES"


def check_burned_in_annotation(meta: dict[str, Any], dataset: Dataset) -> None:
    """Refuse an image with burned-in annotation unless the dataset allows it.

    De-identification cleans attributes, not pixels: text in the image (names, dates, ids) would
    reach readers and exports. A dataset may accept such images on purpose (e.g. already reviewed);
    the case is then flagged (``CasePublic.flags``).

    Raises:
        Invalid: the image declares BurnedInAnnotation=YES and the dataset does not allow it.
    """
    if not burned_in_annotation(meta):
        return
    if DatasetSettings.stored(dataset.settings, dataset_id=dataset.id).allow_burned_in_annotation:
        return
    raise Invalid(
        "the DICOM declares burned-in annotation (BurnedInAnnotation = YES): text such as patient names"
        " may be part of the pixels, which de-identification does not clean; dataset"
        f" {dataset.name!r} does not accept such images (setting allow_burned_in_annotation)",
    )


def list_cases(
    session: Session, user: User, filters: CaseFilters, *, limit: int, offset: int
) -> tuple[list[Case], int]:
    """A page of cases visible to ``user`` and the total count matching the filters."""
    stmt = select(Case)
    if not user.is_admin:
        stmt = stmt.join(Assignment, Assignment.case_id == Case.id).where(Assignment.reader_id == user.id)
    elif filters.reader_id is not None:
        stmt = stmt.join(Assignment, Assignment.case_id == Case.id).where(
            Assignment.reader_id == filters.reader_id
        )
    if filters.dataset_id is not None:
        stmt = stmt.where(Case.dataset_id == filters.dataset_id)
    if filters.reference_label is not None and user.is_admin:
        stmt = stmt.where(Case.reference_label == filters.reference_label)
    if filters.search:
        pattern = f"%{filters.search}%"
        stmt = stmt.where(Case.title.ilike(pattern) | Case.external_id.ilike(pattern))
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(stmt.order_by(Case.id).limit(limit).offset(offset)).unique().all()
    return list(rows), int(total)


def assigned_reader_ids(session: Session, case_ids: list[int]) -> dict[int, list[int]]:
    result: dict[int, list[int]] = {cid: [] for cid in case_ids}
    if not case_ids:
        return result
    rows = session.execute(
        select(Assignment.case_id, Assignment.reader_id).where(Assignment.case_id.in_(case_ids))
    )
    for case_id, reader_id in rows:
        result[case_id].append(reader_id)
    return result


def assign(session: Session, case: Case, readers: list[User], priority: int) -> list[Assignment]:
    """Put ``case`` on each reader's worklist (idempotent per reader)."""
    created = []
    for reader in readers:
        existing = session.scalar(
            select(Assignment).where(Assignment.case_id == case.id, Assignment.reader_id == reader.id)
        )
        if existing is None:
            existing = Assignment(case_id=case.id, reader_id=reader.id, priority=priority)
            session.add(existing)
        else:
            existing.priority = priority
        created.append(existing)
    session.flush()
    return created
