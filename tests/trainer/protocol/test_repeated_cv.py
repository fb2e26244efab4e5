"""The difference test of repeated cross-validation (probes refitted in every fold).

The false-positive test runs the whole evaluation, probe fitting included, on two independent
pure-noise feature sets: "better"/"worse" must come up about 5% of the time, not the ~15% a
bootstrap of fixed out-of-fold predictions gives at this size.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import Normalizer, StandardScaler

from trainer.protocol import (
    EvaluationConfig,
    ProbeConfig,
    assign_folds,
    content_key,
    corrected_difference,
    evaluate_conditions,
    fold_metrics,
    knn_probabilities,
    metric_samples,
)
from trainer.protocol.probes import linear_probabilities


def test_knn_probe_matches_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    x, y, t = rng.normal(size=(60, 7)), rng.integers(0, 3, 60), rng.normal(size=(15, 7))
    cfg = ProbeConfig(knn_k=9, knn_temperature=0.1)

    def weights(d: np.ndarray) -> np.ndarray:
        return np.exp((1.0 - d**2 / 2.0 - 1.0) / cfg.knn_temperature)

    ref = make_pipeline(Normalizer(), KNeighborsClassifier(9, weights=weights, algorithm="brute"))
    expected = ref.fit(x, y).predict_proba(t)
    assert np.allclose(knn_probabilities(x, y, t, 3, cfg), expected)


def test_linear_probe_matches_scikit_learn_pipeline() -> None:
    rng = np.random.default_rng(1)
    x, y, t = rng.normal(size=(80, 12)), rng.integers(0, 3, 80), rng.normal(size=(20, 12))
    cfg = ProbeConfig(linear_c=0.1)
    ref = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=1000, tol=1e-8))
    expected = ref.fit(x, y).predict_proba(t)
    assert np.allclose(linear_probabilities(x, y, t, 3, cfg), expected, atol=1e-3)
    # A class missing from the training cases gets probability 0.
    two = linear_probabilities(x[y < 2], y[y < 2], t, 3, cfg)
    assert np.all(two[:, 2] == 0) and np.allclose(two.sum(1), 1)


def test_fold_metrics_are_each_folds_own_metrics() -> None:
    rng = np.random.default_rng(2)
    y = rng.integers(0, 3, 47)
    logits = rng.normal(size=(47, 3)) + np.eye(3)[y]
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    folds = np.arange(47) % 5
    got = fold_metrics(probs, y, folds, ["a", "b", "c"])
    for f in range(5):
        one = metric_samples(probs, y, np.flatnonzero(folds == f)[None, :], ["a", "b", "c"])
        for name, values in one.items():
            assert np.isclose(got[name][f], values[0], equal_nan=True), name


def test_corrected_difference_is_the_nadeau_bengio_t_test() -> None:
    d = np.array([0.1, -0.05, 0.2, 0.0, 0.15, 0.05, np.nan, 0.1, -0.1, 0.12])
    got = corrected_difference(d, 0.25)
    finite = d[np.isfinite(d)]
    se = np.sqrt((1 / finite.size + 0.25) * finite.var(ddof=1))
    t = finite.mean() / se
    assert np.isclose(got.value, finite.mean())
    assert np.isclose(got.p_value or 0.0, 2 * stats.t.sf(abs(t), finite.size - 1))
    half = stats.t.ppf(0.975, finite.size - 1) * se
    assert np.isclose(got.ci_low, finite.mean() - half) and np.isclose(got.ci_high, finite.mean() + half)
    fewer = corrected_difference(d, 0.25, dof=3)
    assert np.isclose(fewer.p_value or 0.0, 2 * stats.t.sf(abs(t), 3))
    same = corrected_difference(np.zeros(50), 0.25)
    assert (same.value, same.ci_low, same.ci_high, same.p_value) == (0.0, 0.0, 0.0, 1.0)


def test_repetitions_use_content_keyed_folds_shared_by_conditions() -> None:
    keys = [content_key(np.array([i])) for i in range(40)]
    labels = ["a", "b"] * 20
    first = assign_folds(keys, labels, 5, seed=0)
    second = assign_folds(keys, labels, 5, seed=1)
    assert not np.array_equal(first, second)  # another partition per repetition ...
    order = np.random.default_rng(0).permutation(40)
    again = assign_folds([keys[i] for i in order], [labels[i] for i in order], 5, seed=1)
    assert np.array_equal(again, second[order])  # ... still a function of the content only
    x = np.random.default_rng(3).normal(size=(40, 4))
    report = evaluate_conditions(
        {"baseline": x, "mcgip": x}, labels, keys, config=EvaluationConfig(repeats=3)
    )
    assert report["n_repeats"] == 3 and report["n_folds"] == 5
    diff = report["differences"]["mcgip"]["knn.balanced_accuracy"]
    assert (diff["value"], diff["ci_low"], diff["ci_high"], diff["p_value"]) == (0.0, 0.0, 0.0, 1.0)
    assert "Nadeau-Bengio" in report["protocol"]["paired"]


@pytest.mark.slow
def test_whole_evaluation_false_positive_rate_on_pure_noise_encoders() -> None:
    """Two independent pure-noise encoders, 40 labelled cases, default protocol (probes refitted)."""
    evaluations, n = 30, 40
    labels = ["a", "b"] * (n // 2)
    calls = 0
    for rep in range(evaluations):
        rng = np.random.default_rng(9000 + rep)
        keys = [content_key(np.array([rep, i])) for i in range(n)]
        feats = {"mcgip": rng.normal(size=(n, 8)), "baseline": rng.normal(size=(n, 8))}
        report = evaluate_conditions(feats, labels, keys, config=EvaluationConfig(resamples=1000))
        for probe in ("knn", "linear"):
            d = report["differences"]["mcgip"][f"{probe}.balanced_accuracy"]
            calls += d["ci_low"] > 0 or d["ci_high"] < 0
        assert report["verdict"] in ("better", "worse", "cannot tell")
    tests = 2 * evaluations
    # 5% nominal: more than the binomial 99.9% bound means a liberal test (the bootstrap of fixed
    # out-of-fold predictions called ~15% at this size).
    bound = stats.binom.ppf(0.999, tests, 0.05)
    assert calls <= bound, (calls, tests, bound)
