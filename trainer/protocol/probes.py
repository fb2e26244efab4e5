"""Frozen-feature probes fitted on training folds only: weighted kNN and a logistic probe.

Each probe returns out-of-fold class probabilities: a case's probabilities come from the probe
fitted on the other k-1 folds, so every labelled case is scored exactly once and no case ever
informs its own prediction (standardisation is fitted inside the training folds too).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from sklearn import config_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from trainer.arrays import FloatArray

__all__ = ["PROBES", "ProbeConfig", "knn_probabilities", "linear_probabilities", "out_of_fold"]


#: Probes every evaluation runs, in report order.
PROBES = ("knn", "linear")


@dataclass(frozen=True)
class ProbeConfig:
    """Probe settings (fixed in advance: nothing is tuned on the test folds).

    Attributes:
        knn_k: neighbours (capped by the training fold size).
        knn_temperature: neighbour weight ``exp(cosine / T)`` (InstDisc-style).
        linear_c: inverse L2 strength of the logistic probe on standardised features.
        linear_max_iter: L-BFGS iterations.
    """

    knn_k: int = 20
    knn_temperature: float = 0.07
    linear_c: float = 0.1
    linear_max_iter: int = 1000

    def __post_init__(self) -> None:
        if self.knn_k < 1:
            raise ValueError(f"knn_k must be at least 1, got {self.knn_k}")
        if self.knn_temperature <= 0 or self.linear_c <= 0:
            raise ValueError("knn_temperature and linear_c must be positive")


def knn_probabilities(
    train: FloatArray, y_train: NDArray[np.int64], test: FloatArray, n_classes: int, config: ProbeConfig
) -> FloatArray:
    """(m, C) weighted-kNN class probabilities of ``test`` (m, F) from ``train`` (n, F).

    Cosine similarity on L2-normalised features (an all-zero row stays zero, as scikit-learn's
    ``Normalizer`` leaves it); the ``min(k, n)`` most similar training cases vote with weight
    ``exp((cos - 1) / T)`` (InstDisc-style; the constant shift cancels in the normalisation).
    The same rule as ``KNeighborsClassifier(weights=...)`` on normalised features (tested), in a
    few array operations: the repeated cross-validation fits it hundreds of times.
    """

    def unit(x: FloatArray) -> FloatArray:
        norm = np.linalg.norm(x, axis=1, keepdims=True)
        return x / np.where(norm > 0, norm, 1.0)

    k = min(config.knn_k, train.shape[0])
    sims = unit(test) @ unit(train).T  # (m, n)
    nearest = np.argpartition(-sims, k - 1, axis=1)[:, :k]  # (m, k), unordered
    weights = np.exp((np.take_along_axis(sims, nearest, axis=1) - 1.0) / config.knn_temperature)
    votes = np.zeros((test.shape[0], n_classes))
    np.add.at(votes, (np.arange(test.shape[0])[:, None], y_train[nearest]), weights)
    return votes / votes.sum(1, keepdims=True)


def linear_probabilities(
    train: FloatArray, y_train: NDArray[np.int64], test: FloatArray, n_classes: int, config: ProbeConfig
) -> FloatArray:
    """(m, C) probabilities of an L2-regularised logistic regression fitted on ``train`` (n, F).

    Features are standardised with the training cases' mean and standard deviation (what
    ``StandardScaler`` does, without its per-call overhead); a class absent from the training
    cases gets probability 0.
    """
    mean = train.mean(0)
    scale = train.std(0)
    scale[scale == 0] = 1.0
    model = LogisticRegression(C=config.linear_c, max_iter=config.linear_max_iter)
    # The inputs are checked once by the caller; per-fit parameter validation is pure overhead.
    with warnings.catch_warnings(), config_context(skip_parameter_validation=True, assume_finite=True):
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit((train - mean) / scale, y_train)
        probs = model.predict_proba((test - mean) / scale)
    out = np.zeros((test.shape[0], n_classes))
    out[:, model.classes_] = probs
    return out


_PROBE_FUNCTIONS: dict[
    str, Callable[[FloatArray, NDArray[np.int64], FloatArray, int, ProbeConfig], FloatArray]
] = {"knn": knn_probabilities, "linear": linear_probabilities}


def out_of_fold(
    probe: str,
    features: FloatArray,
    y: NDArray[np.int64],
    folds: NDArray[np.int64],
    n_classes: int,
    config: ProbeConfig | None = None,
) -> FloatArray:
    """(n, C) out-of-fold probabilities of ``probe`` on ``features`` (n, F).

    A class absent from a training fold gets probability 0 for that fold's cases.
    """
    if probe not in PROBES:
        raise ValueError(f"probe must be one of {sorted(PROBES)}, got {probe!r}")
    cfg = config or ProbeConfig()
    x = np.asarray(features, dtype=np.float64)
    out = np.zeros((x.shape[0], n_classes))
    fit = _PROBE_FUNCTIONS[probe]
    for fold in np.unique(folds):
        test = folds == fold
        out[test] = fit(x[~test], y[~test], x[test], n_classes, cfg)
    return out
