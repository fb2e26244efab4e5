"""Config validation: bad values and unknown keys are named; JSON and YAML load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trainer.config import ConfigError, TrainConfig


def test_defaults_round_trip() -> None:
    cfg = TrainConfig()
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg


def test_unknown_key_is_named() -> None:
    with pytest.raises(ConfigError, match=r"train\.batchsize: unknown key"):
        TrainConfig.from_dict({"train": {"batchsize": 32}})
    with pytest.raises(ConfigError, match=r"colour: unknown key"):
        TrainConfig.from_dict({"colour": "red"})


def test_bad_values_are_named_with_value() -> None:
    with pytest.raises(ConfigError) as err:
        TrainConfig.from_dict({"train": {"batch_size": -1}, "method": {"name": "mocov3"}})
    text = str(err.value)
    assert "train.batch_size" in text and "-1" in text
    assert "method.name" in text and "mocov3" in text


def test_cross_field_checks() -> None:
    with pytest.raises(ConfigError, match="warmup_steps"):
        TrainConfig.from_dict({"optim": {"warmup_steps": 10}, "train": {"steps": 10}})
    with pytest.raises(ConfigError, match="crop_scale"):
        TrainConfig.from_dict({"augment": {"crop_scale": [0.9, 0.2]}})
    with pytest.raises(ConfigError, match="drop_prob"):
        TrainConfig.from_dict({"gaze": {"drop_prob": 1.0}})


def test_without_gaze_changes_only_gaze() -> None:
    cfg = TrainConfig.from_dict({"gaze": {"shuffle": True, "drop_prob": 0.2}, "train": {"steps": 7}})
    base = cfg.without_gaze()
    assert not base.gaze.enabled and not base.gaze.shuffle
    assert base.train == cfg.train and base.method == cfg.method and base.optim == cfg.optim


def test_load_json_and_yaml(tmp_path: Path) -> None:
    data = {"method": {"name": "byol"}, "data": {"image_size": 64}}
    (tmp_path / "c.json").write_text(json.dumps(data))
    (tmp_path / "c.yaml").write_text("method:\n  name: byol\ndata:\n  image_size: 64\n")
    a = TrainConfig.from_file(tmp_path / "c.json")
    b = TrainConfig.from_file(tmp_path / "c.yaml")
    assert a == b and a.method.name == "byol" and a.data.image_size == 64
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(ConfigError, match="mapping"):
        TrainConfig.from_file(tmp_path / "bad.json")


def test_shipped_configs_validate() -> None:
    folder = Path(__file__).resolve().parents[2] / "trainer" / "configs"
    files = sorted(folder.glob("*.json"))
    assert files, "trainer/configs/*.json missing"
    for path in files:
        TrainConfig.from_file(path)


def test_short_runs_log_often_enough_for_a_curve() -> None:
    from trainer.config import LoopConfig

    assert LoopConfig(steps=5, log_every=10).log_interval == 1
    assert LoopConfig(steps=100, log_every=10).log_interval == 5  # 20 points
    assert LoopConfig(steps=10_000, log_every=10).log_interval == 10
