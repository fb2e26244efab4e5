"""Job kinds as typed specs: one pydantic model per kind, joined in the :data:`JobSpec` union.

A spec is what a job needs besides its dataset: the API validates ``params`` with it, the CLI and the
schedules build one and hand it to :func:`server.jobs.queue.submit`, and the worker looks the kind up
in its handler table (``server.worker.handlers``). Each spec also says which worker lane runs it
(``light``: seconds, must not wait behind training; ``heavy``: a torch subprocess; ``io``: waits
on another server, a PACS) and whether it
needs ``dataset_id``.

Adding a kind: a spec class here (with ``kind``, ``lane``, ``needs_dataset``), the union and
:data:`JobKind`, a handler in ``server/worker/handlers/`` registered in ``HANDLERS``; the tests in
``tests/server/jobs/test_kinds.py`` check that the four agree.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from server.apitypes import Id
from server.exceptions import field_errors
from server.pacs.query import ImportQuery
from trainer.config import TrainConfig

JobKind = Literal[
    "session-features", "pairs", "retrain", "evaluate", "export", "embed", "pacs-import", "pacs-results"
]
ExportFormat = Literal["onnx", "torchscript", "safetensors"]
Lane = Literal["light", "heavy", "io"]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: The worker lane that claims this kind.
    lane: ClassVar[Lane] = "heavy"
    #: Whether a job of this kind must name its dataset.
    needs_dataset: ClassVar[bool] = False

    def params(self) -> dict[str, Any]:
        """The stored ``Job.params`` (unset options left out)."""
        return self.model_dump(mode="json", exclude={"kind"}, exclude_none=True)


class FeaturesSpec(_Spec):
    """Fixations -> stored per-session gaze features; queues ``pairs``."""

    lane: ClassVar[Lane] = "light"
    kind: Literal["session-features"] = "session-features"
    session_ids: list[Id] | None = Field(
        None, max_length=10_000, description="default: all finished sessions without features"
    )


class PairsSpec(_Spec):
    """Incremental pair mining of the dataset's new sessions (all of them with ``full``)."""

    lane: ClassVar[Lane] = "light"
    needs_dataset: ClassVar[bool] = True
    kind: Literal["pairs"] = "pairs"
    metric: str | None = Field(None, max_length=32, description="default: the dataset's metric")
    full: bool = Field(False, description="recompute every pair instead of only new sessions")


class RetrainSpec(_Spec):
    """Snapshot -> train (McGIP + baseline) -> evaluate -> exports -> a model version."""

    needs_dataset: ClassVar[bool] = True
    kind: Literal["retrain"] = "retrain"
    config: dict[str, Any] = Field(default_factory=dict, description="training config (docs/trainer.md)")
    metric: str | None = Field(None, max_length=32, description="pair metric (default: the dataset's)")
    trigger: dict[str, Any] | None = Field(None, description="what queued it, e.g. a schedule's reasons")


class EvaluateSpec(_Spec):
    """Model versions side by side on a fresh snapshot of their dataset."""

    kind: Literal["evaluate"] = "evaluate"
    model_ids: list[Id] = Field(..., min_length=1, max_length=8)
    config: dict[str, Any] = Field(default_factory=dict)


class ExportSpec(_Spec):
    """Verify one export of a version; re-create it from ``encoder.pt`` when missing."""

    kind: Literal["export"] = "export"
    model_id: Id
    format: ExportFormat


class EmbedSpec(_Spec):
    """Embed every case of the version's dataset with its ONNX export."""

    kind: Literal["embed"] = "embed"
    model_id: Id


class PacsImportSpec(_Spec, ImportQuery):
    """Studies from a DICOMweb server into the dataset as cases (the query: ``ImportQuery``)."""

    lane: ClassVar[Lane] = "io"
    needs_dataset: ClassVar[bool] = True
    kind: Literal["pacs-import"] = "pacs-import"


class PacsResultsSpec(_Spec):
    """No parameters: the dataset's settings (``pacs_results``) and its UID links say what goes where."""

    lane: ClassVar[Lane] = "io"
    needs_dataset: ClassVar[bool] = True
    kind: Literal["pacs-results"] = "pacs-results"


JobSpec = Annotated[
    FeaturesSpec
    | PairsSpec
    | RetrainSpec
    | EvaluateSpec
    | ExportSpec
    | EmbedSpec
    | PacsImportSpec
    | PacsResultsSpec,
    Field(discriminator="kind"),
]
_SPEC: TypeAdapter[JobSpec] = TypeAdapter(JobSpec)

#: Spec class of each kind.
SPECS: dict[str, type[_Spec]] = {
    cls.model_fields["kind"].default: cls for cls in get_args(get_args(JobSpec)[0])
}
#: Kinds that act on one dataset and need ``dataset_id``.
NEEDS_DATASET = frozenset(kind for kind, cls in SPECS.items() if cls.needs_dataset)
#: Kinds that are quick (seconds) and must not wait behind a training run.
LIGHT_KINDS = frozenset(kind for kind, cls in SPECS.items() if cls.lane == "light")
#: Kinds that run a torch subprocess (minutes to hours).
HEAVY_KINDS = frozenset(kind for kind, cls in SPECS.items() if cls.lane == "heavy")
#: Kinds that wait on another server (a PACS), for minutes: neither blocks nor waits for the others.
IO_KINDS = frozenset(kind for kind, cls in SPECS.items() if cls.lane == "io")


def spec_of(kind: str, params: dict[str, Any]) -> JobSpec:
    """The typed spec of a stored job (``Job.kind``, ``Job.params``).

    Raises:
        pydantic.ValidationError: the params do not fit the kind.
    """
    return _SPEC.validate_python({**params, "kind": kind})


def validate_params(kind: str, params: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Validate ``params`` for ``kind``; retrain and evaluate configs are checked against ``TrainConfig``.

    Returns:
        (normalised params, errors), errors in the API's 422 format with ``loc`` naming the field,
        e.g. ``["body", "params", "config", "train", "batch_size"]``.
    """
    try:
        parsed = SPECS[kind].model_validate(params)
    except ValidationError as exc:
        return params, field_errors(exc.errors(), ["body", "params"])
    out = parsed.params()
    if isinstance(parsed, RetrainSpec | EvaluateSpec):
        try:
            out["config"] = TrainConfig.model_validate(parsed.config).to_dict()
        except ValidationError as exc:
            return params, field_errors(exc.errors(), ["body", "params", "config"])
    return out, []
