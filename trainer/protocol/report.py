"""The evaluation report: every condition's metrics with 95% CIs, paired differences, the verdict.

Shape (JSON; served by ``GET /api/models/{id}/evaluation``, documented in docs/evaluation.md)::

    {"status": "ok" | "insufficient_labels", "problems": [...],
     "n_cases": 120, "n_folds": 5, "classes": [...], "class_counts": {...},
     "baseline": "baseline", "primary_metric": "knn.balanced_accuracy",
     "conditions": {"mcgip": {"knn.accuracy": {"value", "ci_low", "ci_high"}, ...}, ...},
     "differences": {"mcgip": {"knn.accuracy": {"value", "ci_low", "ci_high", "p_value"}, ...}},
     "n_repeats": 10,
     "confusion": {"mcgip": {"knn": [[...]], "linear": [[...]]}, ...},
     "verdict": "better" | "worse" | "cannot tell", "verdicts": {"mcgip": {...}, ...},
     "protocol": {...}}
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from threadpoolctl import threadpool_limits

from trainer.protocol.bootstrap import DEFAULT_RESAMPLES, interval, paired_difference, stratified_indices
from trainer.protocol.cvtest import DEFAULT_REPEATS, corrected_difference, fold_metrics
from trainer.protocol.folds import DEFAULT_FOLDS, assign_folds, check_labels
from trainer.protocol.metrics import confusion, metric_samples
from trainer.protocol.probes import PROBES, ProbeConfig, out_of_fold

__all__ = ["EvaluationConfig", "evaluate_conditions", "evaluate_probabilities", "verdict_of"]

BETTER, WORSE, CANNOT_TELL = "better", "worse", "cannot tell"
#: Metrics where lower is better (their differences are read the other way round).
LOWER_IS_BETTER = ("ece",)


@dataclass(frozen=True)
class EvaluationConfig:
    """Protocol settings.

    Attributes:
        folds: k of stratified (grouped) k-fold cross-validation.
        resamples: bootstrap resamples (>= 1,000 for a reported CI).
        seed: fold and resample seed (fixed: the same cases and folds for every run).
        repeats: repetitions of the k-fold cross-validation (fold seeds ``seed .. seed+repeats-1``)
            behind the corrected t-test of differences (:mod:`trainer.protocol.cvtest`).
        baseline: condition every other one is compared with.
        primary_metric: the metric the verdict is read from (``probe.metric``).
        probes: probe settings.
    """

    folds: int = DEFAULT_FOLDS
    resamples: int = DEFAULT_RESAMPLES
    seed: int = 0
    repeats: int = DEFAULT_REPEATS
    baseline: str = "baseline"
    primary_metric: str = "knn.balanced_accuracy"
    probes: ProbeConfig = field(default_factory=ProbeConfig)

    def __post_init__(self) -> None:
        if self.folds < 2:
            raise ValueError(f"folds must be at least 2, got {self.folds}")
        if self.resamples < 1000:
            raise ValueError(f"resamples must be at least 1000 for a 95% CI, got {self.resamples}")
        if self.repeats < 1:
            raise ValueError(f"repeats must be at least 1, got {self.repeats}")


def verdict_of(difference: Mapping[str, Any], metric: str, n_cases: int) -> dict[str, Any]:
    """Read a paired difference: "better" only when its CI lies above 0, "worse" below, else not yet.

    For "cannot tell" it estimates how many more labelled cases would narrow the interval enough:
    the CI half-width shrinks about as 1/sqrt(n), so reaching half-width ``x`` takes
    ``n * (h / x)^2 - n`` more cases, with ``x`` the observed difference when it is at least a
    quarter of the half-width ``h`` (what would settle it if the effect is real), else ``h / 2``.
    """
    lo, hi, value = difference.get("ci_low"), difference.get("ci_high"), difference.get("value")
    sign = -1.0 if metric.rsplit(".", 1)[-1] in LOWER_IS_BETTER else 1.0
    out: dict[str, Any] = {"metric": metric, "difference": dict(difference)}
    if lo is None or hi is None or value is None:
        out.update(verdict=CANNOT_TELL, text="cannot tell: the difference could not be estimated")
        return out
    if sign * lo > 0 and sign * hi > 0:
        out.update(verdict=BETTER, text=f"better: {metric} CI [{lo:+.3f}, {hi:+.3f}] lies above 0")
        return out
    if sign * lo < 0 and sign * hi < 0:
        out.update(verdict=WORSE, text=f"worse: {metric} CI [{lo:+.3f}, {hi:+.3f}] lies below 0")
        return out
    half = max((hi - lo) / 2.0, 1e-9)
    target = abs(value) if abs(value) >= half / 4 else half / 2
    more = max(1, math.ceil(n_cases * ((half / target) ** 2 - 1)))
    out.update(
        verdict=CANNOT_TELL,
        more_cases=more,
        narrow_to=target,
        text=(
            f"cannot tell yet — {more} more labelled cases would narrow it to ±{target:.3f} "
            f"(now {value:+.3f}, CI [{lo:+.3f}, {hi:+.3f}])"
        ),
    )
    return out


def _insufficient(problems: Sequence[str], n: int, k: int, counts: dict[str, int]) -> dict[str, Any]:
    return {
        "status": "insufficient_labels",
        "problems": list(problems),
        "n_cases": n,
        "n_folds": k,
        "class_counts": counts,
        "conditions": {},
        "differences": {},
        "verdict": CANNOT_TELL,
        "verdict_text": "cannot tell: " + "; ".join(problems),
    }


def evaluate_probabilities(
    probabilities: Mapping[str, Mapping[str, NDArray[np.float64]]],
    y: NDArray[np.int64],
    classes: Sequence[str],
    config: EvaluationConfig,
    *,
    folds: NDArray[np.int64] | None = None,
    fold_scores: Mapping[str, Mapping[str, NDArray[np.float64]]] | None = None,
    test_fraction: float | None = None,
) -> dict[str, Any]:
    """Metrics, CIs, paired differences and verdicts from out-of-fold probabilities.

    Each condition's metrics get case-level stratified bootstrap CIs of ``probabilities``. The
    differences to the baseline come from the corrected resampled t-test on ``fold_scores`` when
    given (probes refitted in every fold of every repetition: what :func:`evaluate_conditions`
    does), else from the paired bootstrap on the shared resamples, which treats the predictions as
    fixed (right for fixed models, e.g. readers or an already fitted head scored on the same cases).

    Args:
        probabilities: condition -> probe -> (n, C) probabilities, all on the same n cases.
        y: (n,) labels 0..C-1. classes: C names. folds: (n,) fold per case (for the report).
        fold_scores: condition -> ``probe.metric`` -> (J,) metric on each test fold of every
            repetition, folds in the same order for every condition.
        test_fraction: mean n_test / n_train of those folds (needed with ``fold_scores``).
    """
    if fold_scores is not None and test_fraction is None:
        raise ValueError("fold_scores need the folds' test_fraction")
    idx = stratified_indices(y, config.resamples, seed=config.seed)
    observed = np.arange(y.shape[0])[None, :]
    conditions: dict[str, dict[str, Any]] = {}
    samples: dict[str, dict[str, NDArray[np.float64]]] = {}
    conf: dict[str, dict[str, list[list[int]]]] = {}
    points: dict[str, dict[str, float]] = {}
    for cond, by_probe in probabilities.items():
        conditions[cond], samples[cond], points[cond], conf[cond] = {}, {}, {}, {}
        for probe, probs in by_probe.items():
            boot = metric_samples(probs, y, idx, classes)
            point = metric_samples(probs, y, observed, classes)
            for name, values in boot.items():
                key = f"{probe}.{name}"
                samples[cond][key] = values
                points[cond][key] = float(point[name][0])
                conditions[cond][key] = interval(points[cond][key], values).to_dict()
            conf[cond][probe] = confusion(probs, y, len(classes))
    differences: dict[str, dict[str, Any]] = {}
    verdicts: dict[str, dict[str, Any]] = {}
    base = config.baseline
    n = int(y.shape[0])
    if base in samples:
        for cond in samples:
            if cond == base:
                continue
            if fold_scores is not None and cond in fold_scores and base in fold_scores:
                a, b = fold_scores[cond], fold_scores[base]
                # Degrees of freedom: independent repetitions - 1 (cvtest module docstring).
                dof = config.repeats - 1 if config.repeats > 1 else config.folds - 1
                differences[cond] = {
                    key: corrected_difference(a[key] - b[key], float(test_fraction or 0.0), dof).to_dict()
                    for key in a
                    if key in b
                }
            else:
                differences[cond] = {
                    key: paired_difference(
                        points[cond][key] - points[base][key], samples[cond][key], samples[base][key]
                    ).to_dict()
                    for key in samples[cond]
                    if key in samples[base]
                }
            if config.primary_metric in differences[cond]:
                verdicts[cond] = verdict_of(
                    differences[cond][config.primary_metric], config.primary_metric, n
                )
    # The verdict is McGIP's against the baseline; other conditions keep their own in "verdicts".
    main = "mcgip" if "mcgip" in verdicts else None
    report: dict[str, Any] = {
        "status": "ok",
        "problems": [],
        "n_cases": n,
        "n_folds": config.folds,
        "n_repeats": config.repeats if fold_scores is not None else 1,
        "classes": list(classes),
        "class_counts": {c: int((y == i).sum()) for i, c in enumerate(classes)},
        "baseline": base if base in samples else None,
        "primary_metric": config.primary_metric,
        "conditions": conditions,
        "differences": differences,
        "confusion": conf,
        "verdicts": verdicts,
        "verdict": verdicts[main]["verdict"] if main else CANNOT_TELL,
        "verdict_text": verdicts[main]["text"]
        if main
        else "cannot tell: no McGIP and baseline pair to compare",
        "protocol": {
            "cv": "stratified group k-fold (group: patient key, else image content hash)",
            "folds": config.folds,
            "bootstrap": f"case-level stratified, {config.resamples} resamples, 95% percentile CI",
            "paired": (
                f"corrected resampled t-test (Nadeau-Bengio) over {config.repeats} x {config.folds}-fold "
                "cross-validation, probes refitted in every fold; mean per-fold difference, 95% t CI "
                "on repeats - 1 degrees of freedom"
                if fold_scores is not None
                else "differences on shared resamples of fixed predictions; two-sided bootstrap p-value"
            ),
            "repeats": config.repeats if fold_scores is not None else 1,
            "seed": config.seed,
            "probes": asdict(config.probes),
        },
    }
    if folds is not None:
        report["fold_sizes"] = np.bincount(folds, minlength=config.folds).tolist()
    return report


#: Out-of-fold probabilities of one condition under one fold assignment: ``(condition, folds (n,))``
#: -> probe name -> (n, C) probabilities.
ScoreFolds = Callable[[str, NDArray[np.int64]], dict[str, NDArray[np.float64]]]


def repeated_cv(
    conditions: Sequence[str],
    score: ScoreFolds,
    y: NDArray[np.int64],
    classes: Sequence[str],
    keys: Sequence[str],
    labels: Sequence[str],
    config: EvaluationConfig,
    *,
    groups: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Repeated content-keyed k-fold CV of several conditions on the same labelled cases.

    Repetition ``r`` uses fold seed ``config.seed + r``; every condition is scored on the same folds.

    Args:
        conditions: condition names. score: out-of-fold probabilities per probe (``ScoreFolds``).
        y: (n,) labels 0..C-1. classes: C names. keys / labels / groups: per case, for the folds.
        config: the protocol settings.

    Returns:
        ``evaluate_probabilities``'s report: levels and CIs from the first repetition's
        out-of-fold probabilities, differences by the corrected t-test over every fold of every
        repetition.
    """
    probabilities: dict[str, dict[str, NDArray[np.float64]]] = {}
    scores: dict[str, dict[str, list[NDArray[np.float64]]]] = {cond: {} for cond in conditions}
    fractions: list[float] = []
    first: NDArray[np.int64] | None = None
    for r in range(config.repeats):
        folds = assign_folds(keys, labels, config.folds, groups=groups, seed=config.seed + r)
        first = folds if first is None else first
        sizes = np.bincount(folds, minlength=config.folds).astype(np.float64)
        fractions.extend((sizes / (sizes.sum() - sizes)).tolist())
        for cond in conditions:
            by_probe = score(cond, folds)
            if r == 0:
                probabilities[cond] = by_probe
            for probe, probs in by_probe.items():
                for name, values in fold_metrics(probs, y, folds, classes).items():
                    scores[cond].setdefault(f"{probe}.{name}", []).append(values)
    fold_scores = {
        cond: {key: np.concatenate(parts) for key, parts in by_key.items()} for cond, by_key in scores.items()
    }
    return evaluate_probabilities(
        probabilities,
        y,
        classes,
        config,
        folds=first,
        fold_scores=fold_scores,
        test_fraction=float(np.mean(fractions)),
    )


def evaluate_conditions(
    features: Mapping[str, NDArray[np.float64]],
    labels: Sequence[str | None],
    keys: Sequence[str],
    *,
    classes: Sequence[str] | None = None,
    groups: Sequence[str | None] | None = None,
    config: EvaluationConfig | None = None,
) -> dict[str, Any]:
    """Cross-validated evaluation of frozen features of several conditions on the same cases.

    Args:
        features: condition (``"mcgip"``, ``"baseline"``, ``"shuffled"``, ...) -> (n, F) features,
            rows in the order of ``labels``.
        labels: class per case, None when unlabelled (unlabelled cases are left out).
        keys: content key per case (:func:`trainer.protocol.folds.content_key`).
        classes: class order (default: sorted labels present).
        groups: patient key per case, or None (then each image is its own group).
        config: protocol settings.

    Returns:
        The report (module docstring); ``status`` "insufficient_labels" with ``problems`` naming
        exactly what is missing when the labels do not support k-fold evaluation.
    """
    cfg = config or EvaluationConfig()
    labelled = [i for i, y in enumerate(labels) if y is not None]
    use_groups = groups is not None and all(groups[i] is not None for i in labelled)
    grp = [str(groups[i]) for i in labelled] if use_groups and groups is not None else None
    lab = [str(labels[i]) for i in labelled]
    check = check_labels(lab if lab else list(labels), cfg.folds, grp)
    if not check.ok:
        return _insufficient(check.problems, len(labelled), cfg.folds, check.class_counts)
    names = list(classes) if classes is not None else sorted(set(lab))
    names += sorted(set(lab) - set(names))
    present = [c for c in names if c in set(lab)]
    class_index = {c: i for i, c in enumerate(present)}
    y = np.array([class_index[c] for c in lab], dtype=np.int64)
    label_keys = [keys[i] for i in labelled]
    rows = np.asarray(labelled)
    x_of = {cond: np.asarray(x, dtype=np.float64)[rows] for cond, x in features.items()}
    # Probe fits are small matrix products: one BLAS thread is faster than several contending ones
    # (measured 3x on a loaded 2-core machine).
    with threadpool_limits(1):
        report = repeated_cv(
            list(x_of),
            lambda cond, folds: {
                probe: out_of_fold(probe, x_of[cond], y, folds, len(present), cfg.probes) for probe in PROBES
            },
            y,
            present,
            label_keys,
            lab,
            cfg,
            groups=grp,
        )
    report["n_unlabelled"] = len(labels) - len(labelled)
    return report
