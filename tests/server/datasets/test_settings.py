"""DatasetSettings: defaults match the gaze math, bounds and unknown keys are errors, RFC 7396 patches."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, get_args

import pytest
from pydantic import ValidationError

from server.datasets.settings import (
    DEFAULT_METRIC,
    GAZE_METRICS,
    DatasetSettings,
    GazeMetric,
    merge_patch,
)
from trainer.gaze import FeatureConfig, MetricConfig, MiningConfig
from trainer.gaze.scoring import METRICS


def test_metric_names_and_defaults_match_trainer_gaze() -> None:
    assert GAZE_METRICS == METRICS == get_args(GazeMetric)
    settings = DatasetSettings()
    assert settings.metric == DEFAULT_METRIC == MetricConfig().metric
    metric_defaults = {k: v for k, v in asdict(MetricConfig()).items() if k != "metric"}
    assert settings.metric_options.model_dump() == metric_defaults
    assert settings.features.model_dump() == asdict(FeatureConfig())
    assert settings.aggregate == MiningConfig().aggregate and settings.top_k == MiningConfig().top_k


def test_stored_fills_defaults_and_keeps_given_values() -> None:
    settings = DatasetSettings.stored({"metric": "dhash", "features": {"grid": [16, 16]}})
    assert settings.metric == "dhash" and settings.threshold == 0.9
    assert settings.features.grid == (16, 16) and settings.features.tima_eps == 0.15
    assert DatasetSettings.stored(None) == DatasetSettings()
    as_json = settings.to_json()
    assert as_json["features"]["grid"] == [16, 16] and as_json["retrain"]["enabled"] is False
    assert DatasetSettings.stored(as_json) == settings


@pytest.mark.parametrize(
    ("raw", "loc"),
    [
        ({"metrc": "dhash"}, ("metrc",)),
        ({"metric": "cosine"}, ("metric",)),
        ({"threshold": 1.5}, ("threshold",)),
        ({"top_k": 0}, ("top_k",)),
        ({"aggregate": "median"}, ("aggregate",)),
        ({"features": {"grid": [1, 32]}}, ("features", "grid", 0)),
        ({"features": {"sigma": 3}}, ("features", "sigma")),
        ({"metric_options": {"moment_weights": [0.5, 0.6]}}, ("metric_options", "moment_weights")),
        (
            {"metric_options": {"multimatch_weights": [0, 0, 0, 0, 0]}},
            ("metric_options", "multimatch_weights"),
        ),
        ({"retrain": {"enabeld": True}}, ("retrain", "enabeld")),
        ({"retrain": {"cooldown_minutes": -1}}, ("retrain", "cooldown_minutes")),
    ],
)
def test_invalid_settings_name_the_field(raw: dict[str, Any], loc: tuple[Any, ...]) -> None:
    with pytest.raises(ValidationError) as info:
        DatasetSettings.model_validate(raw)
    assert loc in [err["loc"] for err in info.value.errors()]


def test_every_field_is_documented() -> None:
    for model in (
        DatasetSettings,
        *(type(v) for v in DatasetSettings().__dict__.values() if hasattr(type(v), "model_fields")),
    ):
        undocumented = [name for name, field in model.model_fields.items() if not field.description]
        assert not undocumented or model.__name__ == "RetrainPolicy" and undocumented == ["enabled"], (
            model.__name__,
            undocumented,
        )


# RFC 7396 appendix A examples.
@pytest.mark.parametrize(
    ("target", "patch", "result"),
    [
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        (["a", "b"], ["c", "d"], ["c", "d"]),
        ({"a": "b"}, ["c"], ["c"]),
        ({"a": "foo"}, None, None),
        ({"a": "foo"}, "bar", "bar"),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ],
)
def test_merge_patch_rfc7396_examples(target: Any, patch: Any, result: Any) -> None:
    before = repr(target)
    assert merge_patch(target, patch) == result
    assert repr(target) == before  # the target is not modified


def test_stored_reads_a_bad_key_as_its_default() -> None:
    settings = DatasetSettings.stored({"metric": "nope", "colour": "red", "top_k": 5, "retrain": {"x": 1}})
    assert settings == DatasetSettings(top_k=5)
    assert DatasetSettings.stored([1, 2]) == DatasetSettings()  # type: ignore[arg-type]


def test_label_target_setting_is_typed_and_becomes_a_finding_target() -> None:
    from server.datasets.snapshot import label_target

    assert label_target(DatasetSettings()) is None
    settings = DatasetSettings.model_validate({"labels": {"target_finding": "Pleural effusion"}})
    target = label_target(settings)
    assert target is not None and (target.positive, target.negative, target.threshold) == (
        "Pleural effusion",
        "no Pleural effusion",
        3.0,
    )
    for bad in ({"certainty_threshold": 6}, {"target_finding": ""}, {"finding": "Edema"}):
        with pytest.raises(ValidationError):
            DatasetSettings.model_validate({"labels": bad})
