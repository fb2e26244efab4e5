"""The calibrated linear head: fit, temperature scaling, ECE, out-of-fold probabilities."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.special import softmax
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from trainer.diagnosis.head import (
    DiagnosisHead,
    build_head,
    expected_calibration_error,
    fit_linear,
    fit_temperature,
    load_head,
    nll,
    out_of_fold_probabilities,
    save_head,
)


def blobs(
    n: int, classes: int = 3, dim: int = 6, seed: int = 0, noise: float = 1.5
) -> tuple[np.ndarray, np.ndarray]:
    """Class blobs with very different feature scales (so the folded standardisation matters)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    scales = rng.uniform(0.5, 20, dim)
    centres = rng.normal(0, 2.0, (classes, dim))
    return (centres[y] + rng.normal(0, noise, (n, dim))) * scales, y.astype(np.int64)


@pytest.mark.parametrize("classes", [2, 3])
def test_folded_linear_head_equals_the_standardised_sklearn_pipeline(classes: int) -> None:
    x, y = blobs(90, classes)
    weight, bias = fit_linear(x, y, classes)
    ref = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=1000)).fit(x, y)
    np.testing.assert_allclose(softmax(x @ weight.T + bias, axis=1), ref.predict_proba(x), atol=1e-8)


def test_class_missing_from_training_is_never_predicted() -> None:
    x, y = blobs(60, 2)
    weight, bias = fit_linear(x, y, 3)
    probs = softmax(x @ weight.T + bias, axis=1)
    assert probs[:, 2].max() < 1e-9 and np.all(weight[2] == 0)
    with pytest.raises(ValueError, match="two classes"):
        fit_linear(x, np.zeros(60, dtype=np.int64), 2)


def test_temperature_repairs_overconfidence_and_keeps_the_argmax() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 400)
    logits = rng.normal(0, 1, (400, 3))
    logits[np.arange(400), y] += 1.0
    hot = logits * 6.0  # the same ranking, far too confident
    t = fit_temperature(hot, y)
    assert 4.0 < t < 9.0
    assert nll(hot, y, t) < nll(hot, y)
    before, after = softmax(hot, axis=1), softmax(hot / t, axis=1)
    assert expected_calibration_error(after, y) < expected_calibration_error(before, y)
    assert np.array_equal(before.argmax(1), after.argmax(1))


def test_ece_by_hand() -> None:
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.3, 0.7]])
    y = np.array([0, 1, 0, 1])
    # bins: 0.9 (2 cases, accuracy 0.5), 0.6 (1 case, acc 1), 0.7 (1 case, acc 1)
    want = 0.5 * abs(0.5 - 0.9) + 0.25 * abs(1 - 0.6) + 0.25 * abs(1 - 0.7)
    assert expected_calibration_error(probs, y) == pytest.approx(want)


def test_out_of_fold_and_build_head_round_trip(tmp_path: Path) -> None:
    x, y = blobs(120, 3, seed=2, noise=0.7)
    folds = np.arange(120) % 4
    raw, cal = out_of_fold_probabilities(x, y, folds, 3)
    assert raw.shape == cal.shape == (120, 3)
    assert np.array_equal(raw.argmax(1), cal.argmax(1))
    assert (raw.argmax(1) == y).mean() > 0.6
    head = build_head(("a", "b", "c"), x[:80], y[:80], x[80:], y[80:])
    cal_info = head.info["calibration"]
    assert cal_info["n_heldout"] == 40 and cal_info["temperature"] == head.temperature
    back = load_head(save_head(head, tmp_path / "head.json"))
    np.testing.assert_allclose(back.probabilities(x), head.probabilities(x))
    assert back.classes == ("a", "b", "c")
    with pytest.raises(ValueError, match="weight"):
        DiagnosisHead(("a",), np.zeros((2, 3)), np.zeros(2))
