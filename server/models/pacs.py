"""What McGIP remembers of a PACS: imported instances (dedupe), the link back to original UIDs, and
the structured reports it sent.

``pacs_uid_links`` holds the PACS's original UIDs: only admins (through admin-only routes) and the
worker read it; no reader-visible route or response ever includes it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server.models.base import Base, created_at_column

#: Longest DICOM UID (PS3.5 9.1).
UID_LENGTH = 64


class PacsImport(Base):
    """One PACS instance imported into a dataset, keyed by a salted hash of its SOPInstanceUID.

    A second import of the same instance into the same dataset finds this row and skips it, without
    the table holding the UID itself.
    """

    __tablename__ = "pacs_imports"
    __table_args__ = (UniqueConstraint("dataset_id", "sop_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    #: HMAC-SHA256 (hex) of the original SOPInstanceUID under the de-identification key.
    sop_key: Mapped[str] = mapped_column(String(64), nullable=False)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), unique=True)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime] = created_at_column()


class PacsUidLink(Base):
    """De-identified UIDs of a case's image and the original UIDs in the PACS it came from."""

    __tablename__ = "pacs_uid_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), unique=True)
    #: DICOMweb base URL the instance was retrieved from (never with credentials).
    source_url: Mapped[str] = mapped_column(String(512), nullable=False)
    sop_class_uid: Mapped[str] = mapped_column(String(UID_LENGTH), nullable=False)
    original_study_uid: Mapped[str] = mapped_column(String(UID_LENGTH), nullable=False, index=True)
    original_series_uid: Mapped[str] = mapped_column(String(UID_LENGTH), nullable=False)
    original_sop_uid: Mapped[str] = mapped_column(String(UID_LENGTH), nullable=False)
    deid_study_uid: Mapped[str] = mapped_column(String(UID_LENGTH), nullable=False)
    deid_series_uid: Mapped[str] = mapped_column(String(UID_LENGTH), nullable=False)
    deid_sop_uid: Mapped[str] = mapped_column(String(UID_LENGTH), nullable=False, index=True)
    created_at: Mapped[datetime] = created_at_column()


class PacsReport(Base):
    """A DICOM Structured Report sent back to the PACS for one case.

    ``digest`` covers the report's content (diagnoses, predictions): the same content is not sent
    twice, a changed one is sent as a new report.
    """

    __tablename__ = "pacs_reports"
    __table_args__ = (UniqueConstraint("case_id", "digest"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    digest: Mapped[str] = mapped_column(String(64), nullable=False)
    sr_series_uid: Mapped[str] = mapped_column(String(UID_LENGTH), nullable=False)
    sr_sop_uid: Mapped[str] = mapped_column(String(UID_LENGTH), nullable=False)
    destination_url: Mapped[str] = mapped_column(String(512), nullable=False)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"), index=True)
    sent_at: Mapped[datetime] = created_at_column()
