"""Frozen-encoder evaluation on the readers' diagnosis labels: kNN and linear probe.

The split is the snapshot's fixed hash split: labelled ``train`` cases are the kNN memory / probe
training set, labelled ``test`` cases are scored. Metrics: accuracy, macro one-vs-rest AUC and
per-class recall.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from trainer.data.dataset import EvalDataset, ImageStore
from trainer.imaging import PreprocessSpec


@dataclass(frozen=True)
class LabelledSplit:
    """Indices into an ``ImageStore`` with integer labels, for both sides of the split."""

    train_indices: list[int]
    train_labels: list[int]
    test_indices: list[int]
    test_labels: list[int]
    classes: tuple[str, ...]


@torch.no_grad()
def embed(
    encoder: nn.Module,
    store: ImageStore,
    spec: PreprocessSpec,
    indices: Sequence[int],
    *,
    device: torch.device,
    batch_size: int = 128,
) -> torch.Tensor:
    """Encoder features of the given images, (len(indices), F) float32 on CPU.

    Inputs are ``trainer.imaging.model_input`` of each file (what the server's embeddings and
    predictions use), normalised with the spec's mean and std as the exported graphs do.
    """
    was_training = encoder.training
    encoder.eval()
    loader = DataLoader(EvalDataset(store, spec, indices), batch_size=batch_size, shuffle=False)
    feats = [encoder(((x - spec.mean) / spec.std).to(device)).float().cpu() for x, _ in loader]
    encoder.train(was_training)
    if not feats:
        return torch.zeros(0, 0)
    return torch.cat(feats)


def knn_predict(
    train_feats: torch.Tensor,
    train_labels: torch.Tensor,
    test_feats: torch.Tensor,
    num_classes: int,
    *,
    k: int = 20,
    temperature: float = 0.07,
) -> torch.Tensor:
    """Weighted kNN on cosine similarity (InstDisc-style weights ``exp(s / T)``).

    Args:
        train_feats: (N, F). train_labels: (N,) int64. test_feats: (M, F).
        num_classes: C. k: neighbours (capped at N). temperature: weight temperature.

    Returns:
        (M, C) class probabilities.
    """
    a = F.normalize(train_feats.float(), dim=1)
    b = F.normalize(test_feats.float(), dim=1)
    sim = b @ a.T  # (M, N)
    k = min(k, a.shape[0])
    top, idx = sim.topk(k, dim=1)
    weights = (top / temperature).exp()
    votes = torch.zeros(b.shape[0], num_classes, dtype=torch.float32)
    votes.scatter_add_(1, train_labels[idx], weights)
    return votes / votes.sum(1, keepdim=True).clamp(min=1e-12)


def linear_probe(
    train_feats: torch.Tensor,
    train_labels: torch.Tensor,
    test_feats: torch.Tensor,
    num_classes: int,
    *,
    epochs: int = 200,
    lr: float = 0.05,
    weight_decay: float = 1e-4,
    seed: int = 0,
) -> torch.Tensor:
    """Multinomial logistic regression on standardised frozen features (full-batch Adam, seeded).

    Returns:
        (M, C) class probabilities for ``test_feats``.
    """
    mean, std = train_feats.mean(0), train_feats.std(0).clamp(min=1e-6)
    x, xt = (train_feats - mean) / std, (test_feats - mean) / std
    gen = torch.Generator().manual_seed(seed)
    layer = nn.Linear(x.shape[1], num_classes)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(layer.weight.shape, generator=gen) * 0.01)
        layer.bias.zero_()
    opt = torch.optim.Adam(layer.parameters(), lr=lr, weight_decay=weight_decay)
    for _ in range(epochs):
        opt.zero_grad()
        F.cross_entropy(layer(x), train_labels).backward()
        opt.step()
    with torch.no_grad():
        return F.softmax(layer(xt), dim=1)


def binary_auc(scores: torch.Tensor, positive: torch.Tensor) -> float:
    """ROC AUC via the Mann-Whitney statistic with average ranks for ties; NaN if one class is absent."""
    pos = positive.bool()
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = scores.double().argsort()
    sorted_scores = scores.double()[order]
    ranks = torch.empty_like(sorted_scores)
    i, n = 0, len(sorted_scores)
    while i < n:  # average ranks over runs of equal scores
        j = i
        while j + 1 < n and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[i : j + 1] = (i + j) / 2 + 1
        i = j + 1
    rank_of = torch.empty_like(ranks)
    rank_of[order] = ranks
    return float((rank_of[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def classification_metrics(
    probs: torch.Tensor, labels: torch.Tensor, classes: Sequence[str]
) -> dict[str, Any]:
    """Accuracy, macro one-vs-rest AUC (over classes present with both outcomes) and per-class recall.

    Args:
        probs: (M, C) probabilities. labels: (M,) int64. classes: C names.
    """
    pred = probs.argmax(1)
    recall: dict[str, float | None] = {}
    aucs: list[float] = []
    for c, name in enumerate(classes):
        is_c = labels == c
        recall[name] = float((pred[is_c] == c).float().mean()) if bool(is_c.any()) else None
        auc = binary_auc(probs[:, c], is_c)
        if auc == auc:  # not NaN
            aucs.append(auc)
    return {
        "accuracy": float((pred == labels).float().mean()) if len(labels) else float("nan"),
        "macro_auc": sum(aucs) / len(aucs) if aucs else float("nan"),
        "per_class_recall": recall,
        "n": len(labels),
    }


def evaluate_features(
    train_feats: torch.Tensor,
    test_feats: torch.Tensor,
    split: LabelledSplit,
    *,
    knn_k: int,
    knn_temperature: float,
    linear: bool,
    probe_epochs: int,
    probe_lr: float,
    probe_weight_decay: float,
    seed: int = 0,
) -> dict[str, Any]:
    """kNN (and linear probe) metrics of already-computed features."""
    ytr = torch.tensor(split.train_labels, dtype=torch.long)
    yte = torch.tensor(split.test_labels, dtype=torch.long)
    c = len(split.classes)
    out: dict[str, Any] = {"n_train": len(ytr), "n_test": len(yte)}
    knn = knn_predict(train_feats, ytr, test_feats, c, k=knn_k, temperature=knn_temperature)
    out["knn"] = classification_metrics(knn, yte, split.classes)
    if linear:
        probs = linear_probe(
            train_feats,
            ytr,
            test_feats,
            c,
            epochs=probe_epochs,
            lr=probe_lr,
            weight_decay=probe_weight_decay,
            seed=seed,
        )
        out["linear"] = classification_metrics(probs, yte, split.classes)
    return out


def side_by_side(reports: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Flatten ``{model: report}`` into ``{"knn.accuracy": {model: value}, ...}`` for display."""
    table: dict[str, dict[str, float]] = {}
    for model, report in reports.items():
        for probe in ("knn", "linear"):
            for metric in ("accuracy", "macro_auc"):
                if probe in report:
                    table.setdefault(f"{probe}.{metric}", {})[model] = report[probe][metric]
    return table
