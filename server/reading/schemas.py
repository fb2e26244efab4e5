"""Request and response shapes of the reading-session API (see docs/gaze-protocol.md)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    field_validator,
    model_validator,
)

from server.apitypes import Id
from server.models import SessionStatus


def _as_utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; every stored time is UTC, so say so on both backends.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]

#: Size limit of the free-form JSON objects a client stores with a session.
MAX_INFO_BYTES = 16 * 1024


class GazeSource(StrEnum):
    mouse = "mouse"
    replay = "replay"
    webcam = "webcam"
    tracker = "tracker"


class DisplayInfo(BaseModel):
    model_config = ConfigDict(extra="allow")

    screen_w: float = Field(gt=0, le=100_000)
    screen_h: float = Field(gt=0, le=100_000)
    dpr: float = Field(gt=0, le=16)
    screen_mm_w: float | None = Field(default=None, gt=0, le=10_000)
    distance_mm: float | None = Field(default=None, gt=0, le=10_000)


def _check_info_size(info: dict[str, Any]) -> dict[str, Any]:
    if len(json.dumps(info, allow_nan=False)) > MAX_INFO_BYTES:
        raise ValueError(f"must serialise to at most {MAX_INFO_BYTES} bytes")
    return info


class SessionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    case_id: Id
    source: GazeSource
    source_info: dict[str, Any] = Field(default_factory=dict)
    display_info: DisplayInfo

    @model_validator(mode="after")
    def _sizes(self) -> SessionCreate:
        _check_info_size(self.source_info)
        _check_info_size(self.display_info.model_dump())
        return self


class SessionUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source_info: dict[str, Any] = Field(description="Merged into the stored source_info (top-level keys).")

    @model_validator(mode="after")
    def _size(self) -> SessionUpdate:
        _check_info_size(self.source_info)
        return self


class FindingBox(BaseModel):
    model_config = ConfigDict(extra="forbid")

    x0: float = Field(allow_inf_nan=False)
    y0: float = Field(allow_inf_nan=False)
    x1: float = Field(allow_inf_nan=False)
    y1: float = Field(allow_inf_nan=False)

    @model_validator(mode="after")
    def _ordered(self) -> FindingBox:
        if not (self.x0 < self.x1 and self.y0 < self.y1):
            raise ValueError("finding_box needs x0 < x1 and y0 < y1")
        return self


class SessionFinish(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str = Field(min_length=1, max_length=64)
    confidence: float | None = Field(default=None, ge=0, le=1)
    finding_box: FindingBox | None = None


class QualityOverride(BaseModel):
    model_config = ConfigDict(extra="forbid")

    override: StrictBool


class LabelPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    label: str
    confidence: float | None
    finding_box: dict[str, Any] | None
    created_at: UtcDatetime
    #: Earlier versions, oldest first, when the reader amended the diagnosis.
    history: list[dict[str, Any]] = Field(default_factory=list)

    @field_validator("history", mode="before")
    @classmethod
    def _no_history(cls, value: object) -> object:
        return [] if value is None else value


class SessionPublic(BaseModel):
    id: int
    case_id: int
    reader_id: int
    #: The reader's display name (else username), so pages never show bare ids.
    reader_name: str = ""
    source: str
    source_info: dict[str, Any]
    display_info: dict[str, Any]
    status: SessionStatus
    started_at: UtcDatetime
    finished_at: UtcDatetime | None
    sample_count: int
    chunk_count: int
    label: LabelPublic | None
    #: Why the quality gate keeps the session out of pair mining (None: passed or not checked).
    quality_flag: str | None = None
    quality_override: bool = False


class SamplesPublic(BaseModel):
    session_id: int
    columns: list[str]
    samples: list[list[float]]


class HeatmapPublic(BaseModel):
    width: int = Field(description="Image width in pixels.")
    height: int = Field(description="Image height in pixels.")
    size: int = Field(description="Heatmap grid side; values is size x size, row-major (row = image y).")
    sessions: int = Field(description="Sessions aggregated.")
    samples: int = Field(description="Samples that contributed (valid, on the image).")
    values: list[list[float]]


class SessionEventPublic(BaseModel):
    """Something said or done during a session (e.g. a dictated phrase), on the samples' clock (ms)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    t_ms: float
    t_end_ms: float | None
    text: str
    data: dict[str, Any]
