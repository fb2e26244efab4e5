"""Evaluation protocol (numpy, scipy, scikit-learn; no torch): content-keyed stratified k-fold
cross-validation on frozen features, kNN and logistic probes fitted on training folds only,
case-level stratified bootstrap CIs, paired differences to the baseline and the verdict.

See docs/evaluation.md.
"""

from trainer.protocol.bootstrap import Interval, interval, paired_difference, stratified_indices
from trainer.protocol.cvtest import DEFAULT_REPEATS, corrected_difference, fold_metrics
from trainer.protocol.folds import DEFAULT_FOLDS, LabelCheck, assign_folds, check_labels, content_key
from trainer.protocol.metrics import metric_samples
from trainer.protocol.probes import PROBES, ProbeConfig, knn_probabilities, out_of_fold
from trainer.protocol.report import (
    EvaluationConfig,
    evaluate_conditions,
    evaluate_probabilities,
    repeated_cv,
    verdict_of,
)

__all__ = [
    "DEFAULT_FOLDS",
    "DEFAULT_REPEATS",
    "PROBES",
    "EvaluationConfig",
    "Interval",
    "LabelCheck",
    "ProbeConfig",
    "assign_folds",
    "check_labels",
    "content_key",
    "corrected_difference",
    "evaluate_conditions",
    "evaluate_probabilities",
    "fold_metrics",
    "interval",
    "knn_probabilities",
    "metric_samples",
    "out_of_fold",
    "paired_difference",
    "repeated_cv",
    "stratified_indices",
    "verdict_of",
]
