"""Response shapes of the model registry API."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from server.apitypes import UtcDateTime


class ModelPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True, protected_namespaces=())

    id: int
    dataset_id: int
    version: int
    job_id: int | None
    parent_id: int | None
    method: str
    backbone: str
    config: dict[str, Any]
    snapshot: dict[str, Any]
    metrics: dict[str, Any]
    checksums: dict[str, str]
    is_active: bool
    created_at: UtcDateTime
    promoted_at: UtcDateTime | None
    exports: list[str] = []


class EmbeddingPublic(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    model_id: int
    dim: int
    embedding: list[float]


class SimilarCase(BaseModel):
    case_id: int
    title: str
    similarity: float
    #: Reference label (admins only).
    reference_label: str | None = None
    #: Admins: the readers' majority diagnosis; readers: their own diagnosis of that case, if any.
    label: str | None = None


class SimilarPublic(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    case_id: int
    model_id: int | None
    #: False when there is no active model or its embeddings are still being computed.
    ready: bool
    items: list[SimilarCase]
