"""Request and response shapes of the jobs API (the kinds and their parameters: ``server.jobs.kinds``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from server.apitypes import Id, UtcDateTime
from server.jobs.kinds import JobKind


class JobCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: JobKind
    dataset_id: Id | None = None
    params: dict[str, Any] = Field(default_factory=dict)


class JobPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    dataset_id: int | None
    state: str
    params: dict[str, Any]
    progress: float
    progress_info: dict[str, Any]
    log_tail: str
    error: str | None
    result: dict[str, Any] | None
    attempts: int
    max_attempts: int
    cancel_requested: bool
    worker_id: str | None
    created_by_id: int | None
    created_at: UtcDateTime
    run_after: UtcDateTime | None
    started_at: UtcDateTime | None
    heartbeat_at: UtcDateTime | None
    finished_at: UtcDateTime | None


class JobPage(BaseModel):
    items: list[JobPublic]
    total: int
    limit: int
    offset: int
