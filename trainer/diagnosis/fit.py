"""Fit and evaluate a diagnosis head for each trained encoder (McGIP and its baseline alike).

For every encoder: features of the labelled cases through the shared preprocessing, then

* the **deployed head**: linear part fitted on the labelled ``train`` split, temperature on the
  labelled held-out ``test`` split; written as ``head.json`` beside the encoder;
* the **cross-validated evaluation**, by the evaluation protocol (``trainer.protocol``, the
  project's standard, as the encoders' probes): repeated content-keyed stratified k-fold
  cross-validation (``EvaluationConfig.repeats`` x k folds); in every fold of every repetition the
  head is refitted on the other folds and its temperature on their out-of-fold logits, so each
  condition's metrics get 95% case-bootstrap CIs from the first repetition's out-of-fold
  probabilities (before and after temperature scaling), and the McGIP - baseline difference comes
  from the per-fold metrics of all repetitions by the Nadeau-Bengio corrected resampled t-test
  (``trainer.protocol.cvtest``): refitting captures the variability of which cases trained each
  head, which a bootstrap of fixed out-of-fold predictions misses. Then the verdict.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trainer.diagnosis.head import HEAD_FILE, build_head, out_of_fold_probabilities, save_head
from trainer.evaluate import embed
from trainer.export import load_encoder
from trainer.imaging import read_values, spec_from_encoder_info
from trainer.pipeline import PreparedData
from trainer.protocol import (
    DEFAULT_REPEATS,
    EvaluationConfig,
    check_labels,
    content_key,
    repeated_cv,
)

logger = logging.getLogger(__name__)

PRIMARY_METRIC = "head.balanced_accuracy"


def _labelled(prepared: PreparedData) -> tuple[list[int], list[str], list[bool]]:
    """Store indices, labels and is-training flags of the labelled cases, in snapshot order."""
    rows = [
        (i, c.label, c.split == "train") for i, c in enumerate(prepared.snapshot.cases) if c.label is not None
    ]
    return [r[0] for r in rows], [str(r[1]) for r in rows], [r[2] for r in rows]


def features_of(path: Path, prepared: PreparedData, indices: list[int], device: torch.device) -> np.ndarray:
    """(n, F) float64 features of an encoder file on the given store indices."""
    encoder, info = load_encoder(path)
    encoder.to(device)
    feats = embed(encoder, prepared.store, spec_from_encoder_info(info), indices, device=device)
    return feats.double().numpy()


def fit_heads(
    encoders: dict[str, Path],
    prepared: PreparedData,
    *,
    device: torch.device,
    folds: int = 5,
    resamples: int = 2000,
    repeats: int = DEFAULT_REPEATS,
    seed: int = 0,
) -> dict[str, Any]:
    """Write ``head.json`` beside each encoder that has enough labels and evaluate the heads.

    Returns:
        ``{"status", "problems", "classes", "heads": {name: {...}}, "evaluation": protocol report}``;
        ``status`` is ``"insufficient_labels"`` (with ``problems`` saying what is missing) when no
        head could be fitted.
    """
    indices, labels, is_train = _labelled(prepared)
    order = [c for c in prepared.snapshot.classes if c in set(labels)]
    classes = tuple(order + sorted(set(labels) - set(order)))
    index = {c: k for k, c in enumerate(classes)}
    y = np.array([index[label] for label in labels], dtype=np.int64)
    train = np.array(is_train, dtype=bool)
    problems: list[str] = []
    if len(set(y[train].tolist())) < 2:
        problems.append(
            f"the labelled training split has {len(set(y[train].tolist()))} class(es) "
            f"({int(train.sum())} cases); a head needs labelled cases of at least two classes"
        )
    if not (~train).any():
        problems.append("no labelled held-out cases to fit the temperature on")
    out: dict[str, Any] = {"classes": list(classes), "heads": {}, "problems": problems}
    if problems:
        out["status"] = "insufficient_labels"
        out["evaluation"] = {"status": "insufficient_labels", "problems": problems}
        return out
    feats = {name: features_of(path, prepared, indices, device) for name, path in encoders.items()}
    for name, path in encoders.items():
        x = feats[name]
        head = build_head(classes, x[train], y[train], x[~train], y[~train])
        save_head(head, path.parent / HEAD_FILE)
        out["heads"][name] = {"file": str(path.parent / HEAD_FILE), **head.info}
    check = check_labels(labels, folds)
    if not check.ok:
        out["evaluation"] = {"status": "insufficient_labels", "problems": check.problems}
    else:
        keys = [content_key(read_values(prepared.store.paths[i])[0]) for i in indices]
        config = EvaluationConfig(
            folds=folds, resamples=resamples, seed=seed, repeats=repeats, primary_metric=PRIMARY_METRIC
        )
        out["evaluation"] = evaluate_heads(feats, y, labels, keys, classes, config)
        for name in feats:
            cond = out["evaluation"]["conditions"].get(name, {})
            out["heads"][name]["calibration"].update(
                cv_ece_before=cond.get("head_uncalibrated.ece"),
                cv_ece_after=cond.get("head.ece"),
                n_cv=int(y.shape[0]),
            )
    out["status"] = "ok"
    logger.info("diagnosis heads fitted for %s on %d labelled cases", sorted(encoders), len(labels))
    return out


def evaluate_heads(
    features: dict[str, np.ndarray],
    y: np.ndarray,
    labels: list[str],
    keys: list[str],
    classes: tuple[str, ...],
    config: EvaluationConfig,
) -> dict[str, Any]:
    """The protocol's report for the heads of several conditions on the same labelled cases.

    Args:
        features: condition -> (n, F) features. y: (n,) labels 0..C-1 (``labels`` by name).
        keys: content key per case (the protocol's folds). classes: C names.
        config: the protocol settings (folds, repeats, resamples, seed, primary metric).

    Returns:
        ``evaluate_probabilities``'s report with probes ``head`` (calibrated) and
        ``head_uncalibrated``: CIs from the first repetition, differences by the corrected t-test
        over every fold of every repetition.
    """

    def score(name: str, fold_of: np.ndarray) -> dict[str, np.ndarray]:
        before, after = out_of_fold_probabilities(features[name], y, fold_of, len(classes))
        return {"head": after, "head_uncalibrated": before}

    return repeated_cv(list(features), score, y, classes, keys, labels, config)
