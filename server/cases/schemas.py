"""Request and response shapes for datasets, cases and worklists."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from server.apitypes import DbInt, Id, UtcDateTime
from server.datasets.settings import DatasetSettings
from server.models import ImageKind


class DatasetCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=128)
    description: str = ""
    label_set: list[str] = Field(min_length=2, description="Diagnosis labels readers choose from.")
    image_kind: ImageKind = ImageKind.unstructured
    settings: DatasetSettings = Field(default_factory=DatasetSettings)

    @field_validator("label_set")
    @classmethod
    def _distinct_labels(cls, labels: list[str]) -> list[str]:
        cleaned = [label.strip() for label in labels]
        if any(not label or len(label) > 64 for label in cleaned):
            raise ValueError("labels must be 1-64 characters")
        if len(set(cleaned)) != len(cleaned):
            raise ValueError("labels must be distinct")
        return cleaned


class DatasetUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str | None = None
    settings: dict[str, Any] | None = Field(
        None,
        description="RFC 7396 merge patch of the settings: keys to change; null resets one to its default",
    )


class DatasetPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    description: str
    label_set: list[str]
    image_kind: ImageKind
    settings: DatasetSettings
    created_at: UtcDateTime


class ImagePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    format: str
    width: int
    height: int
    bits_stored: int
    photometric: str
    modality: str | None
    value_offset: float
    value_scale: float
    window_center: float
    window_width: float
    invert: bool
    has_dicom: bool
    meta: dict[str, Any]


class CasePublic(BaseModel):
    id: int
    dataset_id: int
    dataset_name: str
    external_id: str | None
    title: str
    created_at: UtcDateTime
    image: ImagePublic | None
    #: Only filled for admins (evaluation ground truth, hidden from readers).
    reference_label: str | None = None
    assigned_reader_ids: list[int] | None = None
    #: Warnings about the case: "burned_in_annotation" (text may be burned into the pixels).
    flags: list[str] = Field(default_factory=list)


class CasePage(BaseModel):
    items: list[CasePublic]
    total: int
    limit: int
    offset: int


class AssignmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reader_ids: list[Id] = Field(min_length=1, max_length=1000)
    priority: DbInt = 0


class WorklistItem(BaseModel):
    case: CasePublic
    priority: int
    sessions: int
    #: A finished session exists (the same as ``status == "read"``; kept for older clients).
    finished: bool
    status: Literal["unread", "in_progress", "read", "skipped"]
    #: The reader's latest diagnosis of the case.
    label: str | None = None
    last_read_at: UtcDateTime | None = None


class WorklistSkip(BaseModel):
    case_id: int
    status: Literal["unread", "in_progress", "read", "skipped"]


class AnnotationPublic(BaseModel):
    """A region on a case's image (stored image pixels), e.g. a data set's anatomy box or ellipse."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    case_id: int
    session_id: int | None
    shape: str
    label: str
    x0: float
    y0: float
    x1: float
    y1: float
    source: str
    attributes: dict[str, Any]


class BulkAssign(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset_id: Id
    reader_ids: list[Id] = Field(min_length=1)
    #: "all": every case to every reader; "round_robin": each case to one reader, in turn.
    mode: Literal["all", "round_robin"] = "round_robin"
    #: Only cases on nobody's worklist yet.
    only_unassigned: bool = False
    #: Only cases whose title or external id contains this text (case-insensitive).
    search: str | None = Field(default=None, max_length=128)
    priority: DbInt = 0


class BulkAssignResult(BaseModel):
    cases: int
    assignments: int
    #: New assignments per reader id.
    per_reader: dict[int, int]


class BulkFilePublic(BaseModel):
    """What became of one file of a bulk upload."""

    name: str = Field(description="the file's relative path (zip entries: archive name / entry path)")
    outcome: Literal["stored", "duplicate", "refused"]
    case_id: int | None = Field(None, description="the new case (stored)")
    duplicate_of: int | None = Field(None, description="the case that already has this image (duplicate)")
    reason: str | None = Field(None, description="why the file was refused or is a duplicate")


class BulkUploadPublic(BaseModel):
    """Per-file results of a bulk upload; every ``stored`` file is committed."""

    dataset_id: int
    stored: int
    duplicates: int
    refused: int
    files: list[BulkFilePublic]
