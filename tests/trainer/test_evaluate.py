"""Evaluation metrics and probes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from trainer.evaluate import binary_auc, classification_metrics, knn_predict, linear_probe, side_by_side


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_binary_auc_matches_sklearn_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 5, 60).astype(float)  # many ties
    labels = rng.random(60) < 0.4
    got = binary_auc(torch.from_numpy(scores), torch.from_numpy(labels))
    assert got == pytest.approx(roc_auc_score(labels, scores))
    assert math.isnan(binary_auc(torch.tensor([0.1, 0.2]), torch.tensor([True, True])))


def test_classification_metrics_hand_case() -> None:
    probs = torch.tensor([[0.9, 0.1], [0.4, 0.6], [0.3, 0.7], [0.6, 0.4]])
    labels = torch.tensor([0, 0, 1, 1])
    m = classification_metrics(probs, labels, ("a", "b"))
    assert m["accuracy"] == 0.5
    assert m["per_class_recall"] == {"a": 0.5, "b": 0.5}
    assert m["macro_auc"] == pytest.approx(0.75)  # b-scores: positives {0.7, 0.4} vs negatives {0.1, 0.6}


def _clusters(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(3, 16, generator=g) * 4
    y = torch.arange(n) % 3
    return centres[y] + torch.randn(n, 16, generator=g), y


def test_knn_and_probe_separate_clusters() -> None:
    xtr, ytr = _clusters(60, 0)
    xte, yte = _clusters(30, 1)
    xte = xte - xte.mean(0) + xtr.mean(0)  # same centres: the generator differs only in noise
    knn = knn_predict(xtr, ytr, xtr[:30] + 0.01, 3, k=5)
    assert classification_metrics(knn, ytr[:30], ("a", "b", "c"))["accuracy"] == 1.0
    probe = linear_probe(xtr, ytr, xtr, 3, epochs=100)
    assert classification_metrics(probe, ytr, ("a", "b", "c"))["accuracy"] == 1.0
    assert torch.allclose(knn.sum(1), torch.ones(30))


def test_side_by_side_table() -> None:
    rep = {"knn": {"accuracy": 0.7, "macro_auc": 0.8}}
    table = side_by_side({"mcgip": rep, "baseline": {"knn": {"accuracy": 0.6, "macro_auc": 0.75}}})
    assert table == {
        "knn.accuracy": {"mcgip": 0.7, "baseline": 0.6},
        "knn.macro_auc": {"mcgip": 0.8, "baseline": 0.75},
    }
