"""Per-dataset settings: one typed, validated object (``Dataset.settings`` holds its JSON form).

Every field has a default, bounds and a description, and unknown keys are errors, so the API answers
422 naming the field instead of storing a typo. Routes, the worker (pair mining, features, scheduled
retraining) and the dashboard read a dataset's settings only through :meth:`DatasetSettings.stored`.

``PATCH /api/datasets/{id}`` changes them with an RFC 7396 merge patch (:func:`merge_patch`): send
only the keys to change, ``null`` to reset one to its default.

Adding a setting: add a field (with default, bounds and ``description``) to the model it belongs to
here; stored rows without it read as the default, so no migration is needed unless old values must
be rewritten.

The metric names and defaults mirror ``trainer.gaze`` (``MetricConfig``, ``FeatureConfig``,
``MiningConfig``); ``tests/server/datasets/test_settings.py`` checks that they agree. This module
imports only pydantic, so the web process can use it without loading the gaze math.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from server.apitypes import MAX_DB_INT

logger = logging.getLogger(__name__)

#: Session similarity metrics (``trainer.gaze.scoring.METRICS``).
GazeMetric = Literal["moments", "dhash", "correlation", "multimatch", "tima"]
GAZE_METRICS: tuple[str, ...] = ("moments", "dhash", "correlation", "multimatch", "tima")
DEFAULT_METRIC: GazeMetric = "moments"
#: Positive-pair threshold of a dataset that sets none (strict; the paper's default is 0.7).
DEFAULT_THRESHOLD = 0.9

_GridSide = Annotated[int, Field(ge=2, le=512)]
_Weight = Annotated[float, Field(ge=0.0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MetricOptions(_Strict):
    """Parameters of the similarity metrics (``trainer.gaze.scoring.MetricConfig`` less ``metric``)."""

    moment_weights: tuple[_Weight, _Weight] = Field(
        (0.5, 0.5),
        description="gaze moments: (w_I1, w_M00), non-negative, sum 1; (0.8, 0.2) suits structured images",
    )
    multimatch_weights: tuple[_Weight, _Weight, _Weight, _Weight, _Weight] = Field(
        (0.25, 0.15, 0.15, 0.35, 0.10),
        description="MultiMatch: weights of vector, direction, length, position, duration (positive sum)",
    )
    grouping: bool = Field(False, description="MultiMatch: simplify scanpaths before comparing")
    tdir: float = Field(
        0.0, ge=0.0, le=180.0, description="MultiMatch simplification: direction threshold (deg)"
    )
    tdur: float = Field(0.0, ge=0.0, description="MultiMatch simplification: duration threshold (s)")
    tamp: float = Field(0.0, ge=0.0, description="MultiMatch simplification: amplitude threshold (px)")
    prefilter_k: int | None = Field(
        None,
        ge=1,
        le=MAX_DB_INT,
        description="MultiMatch: score only the k most similar earlier sessions (null: all)",
    )

    @field_validator("moment_weights")
    @classmethod
    def _sum_to_one(cls, weights: tuple[float, float]) -> tuple[float, float]:
        if abs(sum(weights) - 1.0) > 1e-6:
            raise ValueError(f"moment weights must sum to 1, got {list(weights)}")
        return weights

    @field_validator("multimatch_weights")
    @classmethod
    def _positive_sum(cls, weights: tuple[float, ...]) -> tuple[float, ...]:
        if sum(weights) <= 0:
            raise ValueError("MultiMatch weights need a positive sum")
        return weights


class FeatureSettings(_Strict):
    """How session features are computed (``trainer.gaze.features.FeatureConfig``)."""

    grid: tuple[_GridSide, _GridSide] = Field(
        (32, 32), description="heatmap (rows, cols) for moments, dHash and correlation"
    )
    sigma_px: float | None = Field(
        None,
        gt=0,
        description="heatmap kernel sigma, image px (null: 1 degree if known, else a share of the image)",
    )
    pixels_per_degree: float | None = Field(
        None, gt=0, description="image pixels per degree of visual angle, if known"
    )
    tima_eps: float = Field(0.15, gt=0, le=1.0, description="TIMA: DBSCAN radius in normalised (x, y, t)")
    tima_min_samples: int = Field(2, ge=1, le=1000, description="TIMA: DBSCAN core-point neighbours")


class RetrainPolicy(_Strict):
    """When a dataset retrains by itself.

    Due when enabled and any configured condition holds (all of them with ``require_all``), counted
    since the newest model version of the dataset.
    """

    enabled: bool = False
    interval_hours: float | None = Field(None, gt=0, description="retrain this often (if any new session)")
    min_new_sessions: int | None = Field(
        None, ge=1, le=MAX_DB_INT, description="... or after this many new finished sessions"
    )
    min_new_positives: int | None = Field(
        None, ge=1, le=MAX_DB_INT, description="... or after this many new positive pairs"
    )
    require_all: bool = Field(False, description="all configured conditions instead of any")
    cooldown_minutes: float = Field(30.0, ge=0, description="no scheduled retrain sooner after the last one")
    config: dict[str, Any] = Field(default_factory=dict, description="training config of scheduled runs")


class PacsResults(_Strict):
    """Whether reader diagnoses go back to the PACS (docs/pacs.md)."""

    enabled: bool = Field(
        False, description="send reader diagnoses of PACS-imported cases back as DICOM SR (pacs-results job)"
    )
    include_predictions: bool = Field(
        False, description="add the active model's prediction to each report (needs a diagnosis head)"
    )


class SessionQuality(_Strict):
    """The quality gate for reading sessions and when an open session counts as abandoned.

    A finished session that fails the gate is flagged (the reason is stored and shown in review)
    and kept out of pair mining unless an admin overrides the flag.
    """

    min_valid_fraction: float = Field(
        0.2, ge=0.0, le=1.0, description="flag sessions with a smaller share of valid gaze samples"
    )
    max_validation_error_deg: float | None = Field(
        None, gt=0, description="flag webcam sessions whose calibration validation error (deg) is larger"
    )
    abandon_after_minutes: float = Field(
        60.0, gt=0, le=7 * 24 * 60, description="open sessions without gaze for this long become abandoned"
    )


class EvaluationLabels(_Strict):
    """Which question the evaluation asks of a multi-label dataset (docs/evaluation.md, *Labels*)."""

    target_finding: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        description=(
            "evaluate one finding as '<finding>' vs 'no <finding>', from imported finding labels "
            "(EGD-CXR finding/CheXpert columns, REFLACX certainty per reading); null: the dataset's "
            "own labels (reference label, dataset label, readers' majority)"
        ),
    )
    certainty_threshold: float = Field(
        3.0, ge=0.0, le=5.0, description="REFLACX certainty (0-5) counted as present (3 = Possibly)"
    )


class DatasetSettings(_Strict):
    """Gaze-similarity, feature, retraining and intake settings of one dataset."""

    metric: GazeMetric = Field(DEFAULT_METRIC, description="session similarity used for pair mining")
    threshold: float = Field(
        DEFAULT_THRESHOLD, ge=0.0, le=1.0, description="case pairs scoring at least this are positives"
    )
    aggregate: Literal["mean", "max"] = Field("mean", description="over the readers who read both cases")
    top_k: int | None = Field(
        None, ge=1, le=10_000, description="instead of the threshold: each case's k best partners (null: off)"
    )
    screen_pixels_per_degree: float | None = Field(
        None,
        gt=0,
        le=1000,
        description=(
            "screen (CSS) px per degree of visual angle at the reading stations, used for fixation "
            "detection when a session reports no screen size and distance (null: 35)"
        ),
    )
    metric_options: MetricOptions = Field(default_factory=MetricOptions, description="metric parameters")
    features: FeatureSettings = Field(default_factory=FeatureSettings, description="session features")
    retrain: RetrainPolicy = Field(default_factory=RetrainPolicy, description="automatic retraining")
    pacs_results: PacsResults = Field(default_factory=PacsResults, description="results back to the PACS")
    quality: SessionQuality = Field(
        default_factory=SessionQuality, description="session quality gate and abandoned sessions"
    )
    allow_burned_in_annotation: bool = Field(
        False,
        description="accept DICOM declaring BurnedInAnnotation=YES (text such as names may be in the pixels);"
        " such cases are flagged",
    )
    labels: EvaluationLabels = Field(
        default_factory=EvaluationLabels, description="evaluation labels of multi-label datasets"
    )
    second_read: bool = Field(
        False,
        description="AI second read: after a reader submits a diagnosis, show the active model's "
        "calibrated probabilities and ask them to agree, disagree or amend (off by default)",
    )

    @classmethod
    def stored(cls, raw: Mapping[str, Any] | None, *, dataset_id: int | None = None) -> DatasetSettings:
        """The settings of a stored row (``Dataset.settings``); missing keys take their defaults.

        Every write validates, but a row written around the API (or by an older version) may still
        hold a bad value: such a top-level key is logged and read as its default, so one bad key
        never stops the dataset's jobs.
        """
        values = dict(raw) if isinstance(raw, Mapping) else {}
        for _ in range(len(values) + 1):
            try:
                return cls.model_validate(values)
            except ValidationError as exc:
                bad = {str(err["loc"][0]) for err in exc.errors() if err["loc"]}
                if not bad & values.keys():
                    break
                for key in sorted(bad & values.keys()):
                    logger.warning("dataset %s: invalid setting %r ignored (default used)", dataset_id, key)
                    del values[key]
        return cls()

    def to_json(self) -> dict[str, Any]:
        """The form stored in ``Dataset.settings`` and returned by the API."""
        return self.model_dump(mode="json")


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge patch: ``patch`` applied to ``target`` (neither is modified).

    Objects merge key by key, ``null`` removes a key, anything else (arrays included) replaces.
    """
    if not isinstance(patch, Mapping):
        return patch
    out = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out
