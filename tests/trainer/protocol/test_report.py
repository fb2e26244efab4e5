"""End-to-end protocol on features with a planted signal: probes fitted on training folds only."""

from __future__ import annotations

import time

import numpy as np

from trainer.protocol import EvaluationConfig, content_key, evaluate_conditions, out_of_fold
from trainer.protocol.folds import assign_folds


def _data(n: int = 150, seed: int = 0) -> tuple[list[str], list[str], np.ndarray]:
    labels = [("normal", "mass", "calc")[i % 3] for i in range(n)]
    keys = [content_key(np.array([seed, i])) for i in range(n)]
    y = np.array([i % 3 for i in range(n)])
    return keys, labels, y


def test_informative_features_beat_noise_with_a_confident_verdict() -> None:
    keys, labels, y = _data()
    rng = np.random.default_rng(1)
    noise = rng.normal(size=(150, 16))
    signal = noise.copy()
    signal[:, :3] += 2.5 * np.eye(3)[y]
    t = time.perf_counter()
    report = evaluate_conditions(
        {"baseline": noise, "mcgip": signal}, labels, keys, classes=["normal", "mass", "calc"]
    )
    assert time.perf_counter() - t < 20
    assert report["n_cases"] == 150 and report["n_folds"] == 5
    mc = report["conditions"]["mcgip"]
    for key in ("knn.accuracy", "linear.balanced_accuracy", "knn.macro_auc", "linear.auc.mass"):
        assert set(mc[key]) == {"value", "ci_low", "ci_high"}
        assert mc[key]["ci_low"] <= mc[key]["value"] <= mc[key]["ci_high"]
    # ECE is biased upwards on resamples, so its percentile interval may sit above the estimate.
    assert 0 <= mc["knn.ece"]["ci_low"] <= mc["knn.ece"]["ci_high"] <= 1
    assert "knn.sensitivity.calc" in mc and "linear.specificity.normal" in mc
    assert report["conditions"]["baseline"]["knn.accuracy"]["ci_low"] < 0.34 + 0.05
    diff = report["differences"]["mcgip"]["knn.balanced_accuracy"]
    assert diff["ci_low"] > 0 and diff["p_value"] < 0.01
    assert report["verdict"] == "better"
    cm = report["confusion"]["mcgip"]["knn"]
    assert sum(map(sum, cm)) == 150 and len(cm) == 3


def test_unlabelled_cases_are_left_out() -> None:
    keys, labels, _ = _data(60)
    labels = [lab if i % 4 else None for i, lab in enumerate(labels)]
    feats = np.random.default_rng(0).normal(size=(60, 4))
    report = evaluate_conditions({"baseline": feats, "mcgip": feats}, labels, keys)
    assert report["n_cases"] == 45 and report["n_unlabelled"] == 15
    assert report["differences"]["mcgip"]["knn.accuracy"]["p_value"] == 1.0
    assert report["verdict"] == "cannot tell"


def test_probe_never_sees_its_test_fold() -> None:
    """Labels of the test fold are not used: scrambling them leaves its predictions unchanged."""
    keys, labels, y = _data(100)
    x = np.random.default_rng(2).normal(size=(100, 5))
    folds = assign_folds(keys, labels, 5)
    for probe in ("knn", "linear"):
        p = out_of_fold(probe, x, y, folds, 3)
        y2 = y.copy()
        y2[folds == 0] = (y2[folds == 0] + 1) % 3
        p2 = out_of_fold(probe, x, y2, folds, 3)
        assert np.allclose(p[folds == 0], p2[folds == 0])
        assert np.allclose(p.sum(1), 1)


def test_config_refuses_too_few_resamples() -> None:
    import pytest

    with pytest.raises(ValueError, match="at least 1000"):
        EvaluationConfig(resamples=100)
