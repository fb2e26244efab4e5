"""Datasets, cases, their stored images and reader worklists."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Enum, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from server.models.base import Base, created_at_column


class ImageKind(enum.StrEnum):
    """Whether images of a dataset share anatomy at the same place (structured) or not."""

    structured = "structured"
    unstructured = "unstructured"


class Dataset(Base):
    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True, nullable=False)
    description: Mapped[str] = mapped_column(Text, default="", nullable=False)
    label_set: Mapped[list[Any]] = mapped_column(nullable=False)
    image_kind: Mapped[ImageKind] = mapped_column(
        Enum(ImageKind, native_enum=False, length=16), default=ImageKind.unstructured, nullable=False
    )
    #: Per-dataset gaze-similarity and training settings (metric, weights, threshold, retrain policy).
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict, nullable=False)
    created_at: Mapped[datetime] = created_at_column()


class Case(Base):
    __tablename__ = "cases"
    __table_args__ = (UniqueConstraint("dataset_id", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    external_id: Mapped[str | None] = mapped_column(String(128))
    title: Mapped[str] = mapped_column(String(256), default="", nullable=False)
    #: Reference label (e.g. of synthetic or curated data) used only for evaluation; never shown to readers.
    reference_label: Mapped[str | None] = mapped_column(String(64))
    #: Further per-case labels carried by an imported data set (e.g. EGD-CXR finding and CheXpert
    #: columns), keyed by source: {"egd-cxr": {"findings": {...}, "chexpert": {...}}}. Evaluation only.
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict, nullable=False)
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = created_at_column()

    dataset: Mapped[Dataset] = relationship(lazy="joined")
    image: Mapped[StoredImage | None] = relationship(
        back_populates="case",
        uselist=False,
        lazy="joined",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )


class StoredImage(Base):
    """The files kept for one case's image (all de-identified), and how to window it."""

    __tablename__ = "stored_images"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), unique=True)
    format: Mapped[str] = mapped_column(String(16), nullable=False)
    width: Mapped[int] = mapped_column(Integer, nullable=False)
    height: Mapped[int] = mapped_column(Integer, nullable=False)
    bits_stored: Mapped[int] = mapped_column(Integer, nullable=False)
    photometric: Mapped[str] = mapped_column(String(32), nullable=False)
    modality: Mapped[str | None] = mapped_column(String(16))
    #: modality value = stored pixel * value_scale + value_offset
    value_offset: Mapped[float] = mapped_column(Float, nullable=False)
    value_scale: Mapped[float] = mapped_column(Float, nullable=False)
    window_center: Mapped[float] = mapped_column(Float, nullable=False)
    window_width: Mapped[float] = mapped_column(Float, nullable=False)
    invert: Mapped[bool] = mapped_column(default=False, nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    #: Relative to the blob directory.
    storage_dir: Mapped[str] = mapped_column(String(256), nullable=False)
    has_dicom: Mapped[bool] = mapped_column(default=False, nullable=False)
    #: Non-identifying acquisition metadata (modality, body part, spacing, ...).
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict, nullable=False)
    created_at: Mapped[datetime] = created_at_column()

    case: Mapped[Case] = relationship(back_populates="image")


class Assignment(Base):
    """A case on a reader's worklist."""

    __tablename__ = "assignments"
    __table_args__ = (UniqueConstraint("case_id", "reader_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    reader_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    #: Position on the worklist (lower first).
    priority: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    #: When the reader set the case aside ("skipped"); None while it is on the worklist as usual.
    skipped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at_column()


class Annotation(Base):
    """A region marked on a case's image by a data set or a reader (box or ellipse), in stored image px.

    Anatomy boxes (EGD-CXR ``bounding_boxes.csv``), abnormality ellipses and the chest box
    (REFLACX) land here. ``session_id`` is set when the annotation belongs to one reading.
    """

    __tablename__ = "annotations"
    __table_args__ = (UniqueConstraint("case_id", "source_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    session_id: Mapped[int | None] = mapped_column(
        ForeignKey("reading_sessions.id", ondelete="CASCADE"), index=True
    )
    #: "box" or "ellipse" (the ellipse inscribed in the box x0..x1, y0..y1).
    shape: Mapped[str] = mapped_column(String(16), nullable=False)
    label: Mapped[str] = mapped_column(String(128), nullable=False)
    x0: Mapped[float] = mapped_column(Float, nullable=False)
    y0: Mapped[float] = mapped_column(Float, nullable=False)
    x1: Mapped[float] = mapped_column(Float, nullable=False)
    y1: Mapped[float] = mapped_column(Float, nullable=False)
    #: Where it came from: "egd-cxr", "reflacx", ...
    source: Mapped[str] = mapped_column(String(32), nullable=False)
    #: Identifies the annotation in its source, so a second import does not duplicate it.
    source_key: Mapped[str] = mapped_column(String(256), nullable=False)
    #: Source details (certainty, all labels of a multi-label ellipse, original coordinates).
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict, nullable=False)
    created_at: Mapped[datetime] = created_at_column()
