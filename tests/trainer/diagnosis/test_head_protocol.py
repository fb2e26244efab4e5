"""The diagnosis heads' cross-validated metrics follow the evaluation protocol (repeated CV and the
Nadeau-Bengio corrected t-test for differences), on synthetic features (no torch, seconds)."""

from __future__ import annotations

import numpy as np

from trainer.diagnosis.card import card_markdown, diagnosis_section
from trainer.diagnosis.fit import PRIMARY_METRIC, evaluate_heads
from trainer.diagnosis.head import out_of_fold_probabilities
from trainer.protocol import EvaluationConfig, assign_folds, corrected_difference, fold_metrics

CLASSES = ("normal", "mass")
N = 48


def cases(seed: int = 0) -> tuple[np.ndarray, list[str], list[str]]:
    """(y, label names, content keys) of N cases, two balanced classes."""
    y = np.arange(N) % 2
    return y.astype(np.int64), [CLASSES[int(v)] for v in y], [f"{seed}-{i:04d}" for i in range(N)]


def informative(y: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(0, 1, (N, 8)) + 2.5 * y[:, None] * np.eye(8)[0]


def noise(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 1, (N, 8))


def config(repeats: int = 4) -> EvaluationConfig:
    return EvaluationConfig(folds=4, resamples=1000, repeats=repeats, primary_metric=PRIMARY_METRIC)


def test_differences_are_the_corrected_t_test_over_every_refitted_fold() -> None:
    y, labels, keys = cases()
    feats = {"mcgip": informative(y, 1), "baseline": noise(2)}
    report = evaluate_heads(feats, y, labels, keys, CLASSES, config())
    assert report["status"] == "ok" and report["n_repeats"] == 4 and report["n_folds"] == 4
    assert "Nadeau-Bengio" in report["protocol"]["paired"]
    # Independently: refit the head in each fold of each repetition, take per-fold differences of the
    # primary metric and apply the protocol's corrected test on repeats - 1 degrees of freedom.
    diffs, fractions = [], []
    for r in range(4):
        folds = assign_folds(keys, labels, 4, seed=r)
        sizes = np.bincount(folds, minlength=4).astype(float)
        fractions.extend(sizes / (sizes.sum() - sizes))
        per = {}
        for name, x in feats.items():
            _, after = out_of_fold_probabilities(x, y, folds, 2)
            per[name] = fold_metrics(after, y, folds, CLASSES)["balanced_accuracy"]
        diffs.append(per["mcgip"] - per["baseline"])
    expected = corrected_difference(np.concatenate(diffs), float(np.mean(fractions)), dof=3).to_dict()
    got = report["differences"]["mcgip"][PRIMARY_METRIC]
    for key in ("value", "ci_low", "ci_high", "p_value"):
        assert got[key] is not None and abs(got[key] - expected[key]) < 1e-12
    # An informative encoder against pure noise: the CI lies above 0.
    assert got["ci_low"] > 0 and report["verdict"] == "better"
    # Each condition's metrics keep case-bootstrap CIs, calibrated and not.
    for probe in ("head", "head_uncalibrated"):
        m = report["conditions"]["mcgip"][f"{probe}.balanced_accuracy"]
        assert m["ci_low"] <= m["value"] <= m["ci_high"]


def test_identical_encoders_cannot_be_told_apart() -> None:
    y, labels, keys = cases(1)
    x = noise(5)
    report = evaluate_heads({"mcgip": x, "baseline": x.copy()}, y, labels, keys, CLASSES, config(3))
    diff = report["differences"]["mcgip"][PRIMARY_METRIC]
    assert diff["value"] == 0.0 and diff["ci_low"] == diff["ci_high"] == 0.0 and diff["p_value"] == 1.0
    assert report["verdict"] == "cannot tell"


def test_model_card_states_repeats_and_the_difference_test() -> None:
    y, labels, keys = cases()
    report = evaluate_heads(
        {"mcgip": informative(y, 1), "baseline": noise(2)}, y, labels, keys, CLASSES, config(2)
    )
    section = diagnosis_section(None, {"status": "ok", "evaluation": report}, run="mcgip")
    ev = section["diagnosis"]["evaluation"]
    assert ev["n_repeats"] == 2 and "corrected resampled t-test" in ev["protocol"]["paired"]
    text = card_markdown(section)
    assert "2 x 4-fold CV" in text and "corrected resampled t-test" in text
