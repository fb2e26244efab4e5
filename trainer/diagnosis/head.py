"""A calibrated linear diagnosis head: logistic regression on frozen features + one temperature.

The head maps encoder features ``(n, F)`` to class probabilities ``softmax((x W^T + b) / T)``. ``W``
and ``b`` come from an L2-regularised multinomial logistic regression on standardised features (the
standardisation is folded into ``W`` and ``b``, so the exported graph is one linear layer), fitted on
the labelled training cases only. ``T`` is fitted afterwards on held-out cases by minimising their
negative log-likelihood (Guo et al., 2017): it changes confidence, never the predicted class.

Numpy, scipy and scikit-learn only, so the file format can be read without torch.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from trainer.arrays import FloatArray, IntArray

HEAD_FILE = "head.json"
HEAD_FORMAT = "mcgip-diagnosis-head"
HEAD_VERSION = 1
#: Equal-width confidence bins of the expected calibration error (as trainer.protocol).
ECE_BINS = 15
#: A class missing from the training cases gets this logit offset: probability ~0, never predicted.
_ABSENT_LOGIT = -30.0


@dataclass(frozen=True)
class DiagnosisHead:
    """Linear head with temperature.

    Attributes:
        classes: C label names, in output order.
        weight: (C, F) on raw encoder features. bias: (C,).
        temperature: T > 0 dividing the logits.
        info: how it was fitted and calibrated (JSON-ready).
    """

    classes: tuple[str, ...]
    weight: FloatArray
    bias: FloatArray
    temperature: float = 1.0
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        c = len(self.classes)
        if self.weight.ndim != 2 or self.weight.shape[0] != c or self.bias.shape != (c,):
            raise ValueError(
                f"weight must be (C, F) and bias (C,) with C={c} classes "
                f"(got {self.weight.shape} and {self.bias.shape})"
            )
        if not (self.temperature > 0 and math.isfinite(self.temperature)):
            raise ValueError(f"temperature must be a positive number (got {self.temperature})")

    @property
    def n_features(self) -> int:
        return int(self.weight.shape[1])

    def logits(self, features: NDArray[Any]) -> FloatArray:
        """(n, F) -> (n, C) uncalibrated logits."""
        return np.asarray(features, dtype=np.float64) @ self.weight.T + self.bias

    def probabilities(self, features: NDArray[Any]) -> FloatArray:
        """(n, F) -> (n, C) calibrated probabilities."""
        return softmax(self.logits(features) / self.temperature, axis=1)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": HEAD_FORMAT,
            "version": HEAD_VERSION,
            "classes": list(self.classes),
            "weight": self.weight.tolist(),
            "bias": self.bias.tolist(),
            "temperature": self.temperature,
            "info": self.info,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> DiagnosisHead:
        if raw.get("format") != HEAD_FORMAT or raw.get("version") != HEAD_VERSION:
            raise ValueError(f"not a {HEAD_FORMAT} v{HEAD_VERSION} file")
        return cls(
            classes=tuple(str(c) for c in raw["classes"]),
            weight=np.asarray(raw["weight"], dtype=np.float64),
            bias=np.asarray(raw["bias"], dtype=np.float64),
            temperature=float(raw["temperature"]),
            info=dict(raw.get("info", {})),
        )


def save_head(head: DiagnosisHead, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(head.to_dict()), encoding="utf-8")
    tmp.replace(path)
    return path


def load_head(path: Path) -> DiagnosisHead:
    return DiagnosisHead.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


def head_beside(encoder: Path) -> DiagnosisHead | None:
    """The head written beside an encoder file (``head.json`` in its folder), if any."""
    path = Path(encoder).parent / HEAD_FILE
    return load_head(path) if path.exists() else None


def fit_linear(
    features: NDArray[Any], y: IntArray, n_classes: int, *, c: float = 0.1, max_iter: int = 1000
) -> tuple[FloatArray, FloatArray]:
    """Multinomial logistic regression on standardised features, folded back to raw features.

    Args:
        features: (n, F). y: (n,) in 0..C-1 (at least two distinct values). n_classes: C.
        c: inverse L2 strength (the protocol's logistic probe default).

    Returns:
        (weight (C, F), bias (C,)) such that ``features @ weight.T + bias`` are the logits.
    """
    x = np.asarray(features, dtype=np.float64)
    present = np.unique(y)
    if present.shape[0] < 2:
        raise ValueError(f"a head needs labelled cases of at least two classes (got {present.tolist()})")
    mean, std = x.mean(0), x.std(0)
    std = np.where(std > 1e-8, std, 1.0)
    # One BLAS thread: these problems are small (tens to thousands of cases), and a multi-threaded
    # BLAS on a busy machine was measured 5x slower than one thread.
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = LogisticRegression(C=c, max_iter=max_iter).fit((x - mean) / std, y)
    coef, intercept = np.asarray(model.coef_), np.asarray(model.intercept_)
    if present.shape[0] == 2:  # sklearn's binary form: logit of the second class against the first
        coef = np.vstack([np.zeros_like(coef), coef])
        intercept = np.concatenate([[0.0], intercept])
    weight = np.zeros((n_classes, x.shape[1]))
    bias = np.full(n_classes, _ABSENT_LOGIT)
    for row, cls in enumerate(model.classes_):
        weight[int(cls)] = coef[row] / std
        bias[int(cls)] = intercept[row] - float(coef[row] @ (mean / std))
    return weight, bias


def nll(logits: FloatArray, y: IntArray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of ``softmax(logits / T)``."""
    return float(-log_softmax(logits / temperature, axis=1)[np.arange(y.shape[0]), y].mean())


def fit_temperature(logits: FloatArray, y: IntArray, *, bounds: tuple[float, float] = (0.05, 20.0)) -> float:
    """The T minimising the held-out NLL of ``softmax(logits / T)`` (bounded scalar search on log T)."""
    if y.shape[0] == 0:
        return 1.0
    lo, hi = math.log(bounds[0]), math.log(bounds[1])
    result = minimize_scalar(lambda t: nll(logits, y, math.exp(t)), bounds=(lo, hi), method="bounded")
    return float(math.exp(result.x))


def expected_calibration_error(probs: FloatArray, y: IntArray, bins: int = ECE_BINS) -> float:
    """ECE: |accuracy - confidence| per equal-width confidence bin, weighted by the bin's share."""
    if y.shape[0] == 0:
        return float("nan")
    conf = probs.max(1)
    correct = (probs.argmax(1) == y).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        members = which == b
        if members.any():
            total += members.mean() * abs(correct[members].mean() - conf[members].mean())
    return float(total)


def out_of_fold_probabilities(
    features: NDArray[Any], y: IntArray, folds: IntArray, n_classes: int, *, c: float = 0.1
) -> tuple[FloatArray, FloatArray]:
    """Cross-validated head probabilities before and after temperature scaling.

    Each fold's cases are scored by a head fitted on the other folds. The temperature applied to a
    fold is fitted on the other folds' out-of-fold logits, so no case informs its own calibration.

    Returns:
        ((n, C) uncalibrated, (n, C) calibrated) probabilities.
    """
    x = np.asarray(features, dtype=np.float64)
    logits = np.zeros((x.shape[0], n_classes))
    for fold in np.unique(folds):
        test = folds == fold
        weight, bias = fit_linear(x[~test], y[~test], n_classes, c=c)
        logits[test] = x[test] @ weight.T + bias
    calibrated = np.zeros_like(logits)
    for fold in np.unique(folds):
        test = folds == fold
        t = fit_temperature(logits[~test], y[~test])
        calibrated[test] = softmax(logits[test] / t, axis=1)
    return softmax(logits, axis=1), calibrated


def build_head(
    classes: tuple[str, ...],
    train_features: NDArray[Any],
    train_y: IntArray,
    heldout_features: NDArray[Any],
    heldout_y: IntArray,
    *,
    c: float = 0.1,
) -> DiagnosisHead:
    """Fit the linear part on the training cases and the temperature on the held-out cases.

    ``info.calibration`` records ECE and NLL on the held-out cases before and after scaling (the
    temperature was fitted there; the cross-validated figures in the model card are the honest ones).
    """
    weight, bias = fit_linear(train_features, train_y, len(classes), c=c)
    logits = np.asarray(heldout_features, dtype=np.float64) @ weight.T + bias
    t = fit_temperature(logits, heldout_y)
    before, after = softmax(logits, axis=1), softmax(logits / t, axis=1)
    info = {
        "fit": {
            "model": "multinomial logistic regression on standardised frozen features (folded in)",
            "l2_c": c,
            "n_train": int(train_y.shape[0]),
            "train_class_counts": {name: int((train_y == i).sum()) for i, name in enumerate(classes)},
        },
        "calibration": {
            "method": "temperature scaling (NLL, scipy bounded search)",
            "temperature": t,
            "n_heldout": int(heldout_y.shape[0]),
            "ece_bins": ECE_BINS,
            "heldout_ece_before": _finite(expected_calibration_error(before, heldout_y)),
            "heldout_ece_after": _finite(expected_calibration_error(after, heldout_y)),
            "heldout_nll_before": _finite(nll(logits, heldout_y)) if heldout_y.shape[0] else None,
            "heldout_nll_after": _finite(nll(logits, heldout_y, t)) if heldout_y.shape[0] else None,
        },
    }
    return DiagnosisHead(classes, weight, bias, t, info)


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None
