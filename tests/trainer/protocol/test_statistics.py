"""Bootstrap CIs and the paired test: coverage and false-positive rate on simulated scores."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, balanced_accuracy_score, roc_auc_score

from trainer.protocol import metric_samples, paired_difference, stratified_indices, verdict_of
from trainer.protocol.bootstrap import interval


def _acc_samples(correct: np.ndarray, idx: np.ndarray) -> np.ndarray:
    return correct[idx].mean(1)


def test_metrics_match_scikit_learn_on_the_observed_sample() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, size=90)
    logits = rng.normal(size=(90, 3)) + 1.5 * np.eye(3)[y]
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    got = metric_samples(probs, y, np.arange(90)[None], ["a", "b", "c"])
    pred = probs.argmax(1)
    assert np.isclose(got["accuracy"][0], accuracy_score(y, pred))
    assert np.isclose(got["balanced_accuracy"][0], balanced_accuracy_score(y, pred))
    assert np.isclose(got["macro_auc"][0], roc_auc_score(y, probs, multi_class="ovr", average="macro"))
    assert np.isclose(got["auc.b"][0], roc_auc_score(y == 1, probs[:, 1]))
    assert 0 <= got["ece"][0] <= 1


def test_stratified_resamples_keep_class_counts() -> None:
    y = np.array([0] * 7 + [1] * 13)
    idx = stratified_indices(y, 50, seed=3)
    assert idx.shape == (50, 20)
    assert ((y[idx] == 0).sum(1) == 7).all()


def test_paired_ci_covers_a_known_difference_about_95_percent() -> None:
    """Model A right with p 0.75, B with p 0.65 (correlated); the CI should cover +0.10 ~95%."""
    rng = np.random.default_rng(42)
    n, reps, hits = 300, 300, 0
    y = np.array([0, 1] * (n // 2))
    for r in range(reps):
        u = rng.random(n)
        a = (u < 0.75).astype(float)  # shared latent difficulty: a and b are correlated
        b = (np.where(rng.random(n) < 0.5, u, rng.random(n)) < 0.65).astype(float)
        idx = stratified_indices(y, 1000, seed=r)
        d = paired_difference(a.mean() - b.mean(), _acc_samples(a, idx), _acc_samples(b, idx))
        hits += d.ci_low <= 0.10 <= d.ci_high
    assert 0.91 <= hits / reps <= 0.985, hits / reps


def test_single_model_ci_covers_the_true_accuracy() -> None:
    rng = np.random.default_rng(7)
    y = np.array([0, 1] * 100)
    hits = 0
    for r in range(300):
        a = (rng.random(200) < 0.7).astype(float)
        idx = stratified_indices(y, 1000, seed=r)
        ci = interval(a.mean(), _acc_samples(a, idx))
        hits += ci.ci_low <= 0.7 <= ci.ci_high
    assert 0.91 <= hits / 300 <= 0.985


def test_paired_test_false_positive_rate_is_about_5_percent() -> None:
    """Two models of the same quality (independent errors): p < 0.05 about 5% of the time."""
    rng = np.random.default_rng(1)
    n, reps = 200, 400
    y = np.array([0, 1] * (n // 2))
    rejected = better = 0
    for r in range(reps):
        a = (rng.random(n) < 0.7).astype(float)
        b = (rng.random(n) < 0.7).astype(float)
        idx = stratified_indices(y, 1000, seed=r)
        d = paired_difference(a.mean() - b.mean(), _acc_samples(a, idx), _acc_samples(b, idx))
        rejected += d.p_value is not None and d.p_value < 0.05
        better += verdict_of(d.to_dict(), "knn.accuracy", n)["verdict"] == "better"
    assert 0.02 <= rejected / reps <= 0.09, rejected / reps
    assert better / reps <= 0.05


def test_identical_models_are_never_told_apart() -> None:
    y = np.array([0, 1] * 50)
    a = (np.random.default_rng(0).random(100) < 0.7).astype(float)
    idx = stratified_indices(y, 1000)
    d = paired_difference(0.0, _acc_samples(a, idx), _acc_samples(a, idx))
    assert (d.value, d.ci_low, d.ci_high, d.p_value) == (0.0, 0.0, 0.0, 1.0)
    v = verdict_of(d.to_dict(), "knn.accuracy", 100)
    assert v["verdict"] == "cannot tell"


def _verdict(value: float, lo: float, hi: float, metric: str = "knn.accuracy") -> str:
    return str(verdict_of({"value": value, "ci_low": lo, "ci_high": hi}, metric, 100)["verdict"])


def test_verdict_reads_the_interval() -> None:
    assert (
        verdict_of({"value": 0.1, "ci_low": 0.02, "ci_high": 0.18}, "knn.accuracy", 100)["verdict"]
        == "better"
    )
    assert (
        verdict_of({"value": -0.1, "ci_low": -0.2, "ci_high": -0.01}, "knn.accuracy", 100)["verdict"]
        == "worse"
    )
    # Lower ECE is better.
    assert (
        verdict_of({"value": -0.1, "ci_low": -0.2, "ci_high": -0.01}, "knn.ece", 100)["verdict"] == "better"
    )
    v = verdict_of({"value": 0.05, "ci_low": -0.05, "ci_high": 0.15}, "knn.accuracy", 100)
    assert v["verdict"] == "cannot tell"
    # Half-width 0.10 -> 0.05 needs 4x the cases: 300 more.
    assert v["more_cases"] == 300 and abs(v["narrow_to"] - 0.05) < 1e-12
    assert v["text"].startswith("cannot tell yet — 300 more labelled cases would narrow it to ±0.050")
