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
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import Normalizer, StandardScaler

__all__ = ["PROBES", "ProbeConfig", "out_of_fold"]

FloatArray = NDArray[np.float64]

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


def _knn(config: ProbeConfig, n_train: int) -> object:
    temperature = config.knn_temperature

    def weights(dist: FloatArray) -> FloatArray:
        # Euclidean distance of unit vectors -> cosine similarity: s = 1 - d^2 / 2.
        return np.exp((1.0 - dist**2 / 2.0 - 1.0) / temperature)

    return make_pipeline(
        Normalizer(),
        KNeighborsClassifier(n_neighbors=min(config.knn_k, n_train), weights=weights, algorithm="brute"),
    )


def _linear(config: ProbeConfig, n_train: int) -> object:
    del n_train
    return make_pipeline(
        StandardScaler(), LogisticRegression(C=config.linear_c, max_iter=config.linear_max_iter)
    )


_BUILDERS: dict[str, Callable[[ProbeConfig, int], object]] = {"knn": _knn, "linear": _linear}


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
    if probe not in _BUILDERS:
        raise ValueError(f"probe must be one of {sorted(_BUILDERS)}, got {probe!r}")
    cfg = config or ProbeConfig()
    x = np.asarray(features, dtype=np.float64)
    out = np.zeros((x.shape[0], n_classes))
    for fold in np.unique(folds):
        test = folds == fold
        train = ~test
        model = _BUILDERS[probe](cfg, int(train.sum()))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(x[train], y[train])  # type: ignore[attr-defined]
            probs = model.predict_proba(x[test])  # type: ignore[attr-defined]
        cols = model.classes_  # type: ignore[attr-defined]
        out[np.ix_(np.flatnonzero(test), cols)] = probs
    return out
