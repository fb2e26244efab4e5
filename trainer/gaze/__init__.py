"""Gaze analytics (numpy/scipy only; no torch, no database, no HTTP).

Fixations (I-VT / I-DT), heatmaps, similarity metrics (gaze moments, dHash, heatmap correlation,
MultiMatch, TIMA) and incremental pair mining.  See ``docs/gaze-analytics.md``.
"""

from trainer.gaze.correlation import heatmap_correlation
from trainer.gaze.dhash import dhash, dhash_batch, dhash_similarity
from trainer.gaze.features import FeatureConfig, SessionFeatures, compute_session_features
from trainer.gaze.fixations import FixationTable, GazeEvents, SaccadeTable, detect_fixations
from trainer.gaze.heatmap import case_heatmap, gaussian_heatmap
from trainer.gaze.mining import MiningConfig, PairGraph, PairMiner
from trainer.gaze.moments import (
    WEIGHTS_STRUCTURED,
    WEIGHTS_UNSTRUCTURED,
    moment_features,
    moment_features_batch,
    moment_similarity,
)
from trainer.gaze.multimatch import (
    DEFAULT_COMBINED_WEIGHTS,
    MEASURES,
    combined_score,
    multimatch,
    multimatch_many,
    prepare_scanpath,
)
from trainer.gaze.scanpath import SimplificationError
from trainer.gaze.scoring import MetricConfig
from trainer.gaze.tima import tima_clusters, tima_similarity

__all__ = [
    "DEFAULT_COMBINED_WEIGHTS",
    "MEASURES",
    "WEIGHTS_STRUCTURED",
    "WEIGHTS_UNSTRUCTURED",
    "FeatureConfig",
    "FixationTable",
    "GazeEvents",
    "MetricConfig",
    "MiningConfig",
    "PairGraph",
    "PairMiner",
    "SaccadeTable",
    "SessionFeatures",
    "SimplificationError",
    "case_heatmap",
    "combined_score",
    "compute_session_features",
    "detect_fixations",
    "dhash",
    "dhash_batch",
    "dhash_similarity",
    "gaussian_heatmap",
    "heatmap_correlation",
    "moment_features",
    "moment_features_batch",
    "moment_similarity",
    "multimatch",
    "multimatch_many",
    "prepare_scanpath",
    "tima_clusters",
    "tima_similarity",
]
