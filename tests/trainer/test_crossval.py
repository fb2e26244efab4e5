"""Cross-validated evaluation of saved encoders: content keys, same folds, too few labels."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from tests.trainer.fixtures import build_snapshot
from trainer.config import TrainConfig
from trainer.crossval import cross_validate, image_key
from trainer.pipeline import prepare_data, save_untrained_encoder

CONFIG = {
    "data": {"image_size": 32, "load_size": 40},
    "model": {"proj_hidden_dim": 64, "proj_dim": 32},
    "evaluation": {"knn_k": 5, "resamples": 1000},
}


def test_encoders_are_scored_on_the_same_folds(tmp_path: Path) -> None:
    snapshot, _ = build_snapshot(tmp_path / "data", 40, size=40)
    config = TrainConfig.from_dict(CONFIG)
    prepared = prepare_data(config, snapshot)
    a = save_untrained_encoder(config, prepared, tmp_path / "a.pt")
    other = TrainConfig.from_dict({**CONFIG, "train": {"seed": 3}})
    b = save_untrained_encoder(other, prepared, tmp_path / "b.pt")
    cpu = torch.device("cpu")
    # "copy" is the baseline's encoder under another name.
    report = cross_validate(
        {"baseline": a, "mcgip": b, "copy": a}, snapshot, prepared.store, config.evaluation, device=cpu
    )
    assert report["status"] == "ok" and report["n_cases"] == 40 and report["fold_sizes"] == [8] * 5
    assert report["differences"]["mcgip"]["knn.accuracy"]["p_value"] is not None
    # The same encoder under two names: identical scores on every case, so no difference at all.
    d = report["differences"]["copy"]["linear.accuracy"]
    assert (d["value"], d["ci_low"], d["ci_high"], d["p_value"]) == (0.0, 0.0, 0.0, 1.0)
    assert report["verdicts"]["copy"]["verdict"] == "cannot tell"


def test_content_key_ignores_file_encoding(tmp_path: Path) -> None:
    from PIL import Image

    snapshot, _ = build_snapshot(tmp_path / "data", 4, size=16)
    src = snapshot.cases[0].image
    with Image.open(src) as img:
        img.save(tmp_path / "again.png", compress_level=0)
    assert image_key(src) == image_key(tmp_path / "again.png")
    assert image_key(src) != image_key(snapshot.cases[1].image)


def test_too_few_labels_still_reports_what_is_missing(tmp_path: Path) -> None:
    snapshot, _ = build_snapshot(tmp_path / "data", 12, size=16)
    cases = tuple(
        dataclasses.replace(c, label="normal" if i < 9 else ("blob" if i < 11 else None))
        for i, c in enumerate(snapshot.cases)
    )
    snapshot = dataclasses.replace(snapshot, cases=cases)
    config = TrainConfig.from_dict(CONFIG)
    prepared = prepare_data(config, snapshot)
    report = cross_validate({}, snapshot, prepared.store, config.evaluation, device=torch.device("cpu"))
    assert report["status"] == "insufficient_labels"
    assert report["problems"] == [
        "class 'blob' has 2 labelled cases; 5-fold cross-validation needs at least 5 per class (3 more)"
    ]
