"""Request and response shapes of the jobs API, and per-kind parameter validation."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from server.apitypes import Id, UtcDateTime
from server.pacs.query import ImportQuery
from trainer.config import TrainConfig

JobKind = Literal[
    "session-features", "pairs", "retrain", "evaluate", "export", "embed", "pacs-import", "pacs-results"
]
ExportFormat = Literal["onnx", "torchscript", "safetensors"]


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FeaturesParams(_Params):
    session_ids: list[Id] | None = Field(
        None, max_length=10_000, description="default: all finished sessions without features"
    )


class PairsParams(_Params):
    metric: str | None = Field(None, max_length=32, description="default: the dataset's metric")
    full: bool = Field(False, description="recompute every pair instead of only new sessions")


class RetrainParams(_Params):
    config: dict[str, Any] = Field(default_factory=dict, description="training config (docs/trainer.md)")
    metric: str | None = Field(None, max_length=32, description="pair metric (default: the dataset's)")


class EvaluateParams(_Params):
    model_ids: list[Id] = Field(..., min_length=1, max_length=8)
    config: dict[str, Any] = Field(default_factory=dict)


class ExportParams(_Params):
    model_id: Id
    format: ExportFormat


class EmbedParams(_Params):
    model_id: Id


class PacsResultsParams(_Params):
    """No parameters: the dataset's settings (``pacs_results``) and its UID links say what goes where."""


PARAMS: dict[str, type[BaseModel]] = {
    "session-features": FeaturesParams,
    "pairs": PairsParams,
    "retrain": RetrainParams,
    "evaluate": EvaluateParams,
    "export": ExportParams,
    "embed": EmbedParams,
    "pacs-import": ImportQuery,
    "pacs-results": PacsResultsParams,
}
#: Kinds that act on one dataset and need ``dataset_id``.
NEEDS_DATASET = frozenset({"pairs", "retrain", "pacs-import", "pacs-results"})


class JobCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: JobKind
    dataset_id: Id | None = None
    params: dict[str, Any] = Field(default_factory=dict)


def _errors(exc: ValidationError, prefix: list[str | int]) -> list[dict[str, Any]]:
    return [{"loc": [*prefix, *err["loc"]], "msg": err["msg"], "type": err["type"]} for err in exc.errors()]


def validate_params(kind: str, params: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Validate ``params`` for ``kind``; a retrain's config is checked against ``TrainConfig``.

    Returns:
        (normalised params, errors), errors in the API's 422 format with ``loc`` naming the field,
        e.g. ``["body", "params", "config", "train", "batch_size"]``.
    """
    model = PARAMS[kind]
    try:
        parsed = model.model_validate(params)
    except ValidationError as exc:
        return params, _errors(exc, ["body", "params"])
    out = parsed.model_dump(mode="json", exclude_none=True)
    if isinstance(parsed, RetrainParams | EvaluateParams):
        try:
            out["config"] = TrainConfig.model_validate(parsed.config).to_dict()
        except ValidationError as exc:
            return params, _errors(exc, ["body", "params", "config"])
    return out, []


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
