"""Cross-validation folds keyed on image content, and the label checks that gate evaluation.

Folds are a function of *what the images are*, never of database ids or row order: every case gets
a content key (sha256 of its decoded pixels), cases are ordered by a seeded hash of that key, and
scikit-learn's ``StratifiedGroupKFold`` splits them with the group = patient key when one exists,
else the content key. So

- McGIP, its baseline and every control are scored on the same folds (the folds are computed once
  per label set and handed to every condition);
- the same images with the same labels give the same folds in any dataset, whatever their ids;
- duplicate images (and all images of one patient) never straddle a training and a test fold.

Numpy and scikit-learn only (no torch).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

__all__ = ["DEFAULT_FOLDS", "LabelCheck", "assign_folds", "check_labels", "content_key"]

#: k of k-fold cross-validation unless configured otherwise.
DEFAULT_FOLDS = 5


def content_key(pixels: NDArray[np.generic]) -> str:
    """Stable hex key of an image's pixel values (shape and dtype included; not the file bytes).

    Two encodings of the same pixels (PNG compression level, DICOM vs PNG) get the same key.
    """
    arr = np.ascontiguousarray(pixels)
    h = hashlib.sha256(f"{arr.dtype.str}:{arr.shape}".encode())
    h.update(arr.tobytes())
    return h.hexdigest()


@dataclass(frozen=True)
class LabelCheck:
    """Whether ``labels`` support k-fold evaluation, and exactly what is missing if not.

    Attributes:
        ok: True when evaluation can run.
        problems: one sentence per missing requirement (empty when ``ok``).
        class_counts: labelled cases per class.
    """

    ok: bool
    problems: tuple[str, ...]
    class_counts: dict[str, int]


def check_labels(
    labels: Sequence[str | None], k: int = DEFAULT_FOLDS, groups: Sequence[str] | None = None
) -> LabelCheck:
    """Check that there are at least two classes and at least ``k`` labelled cases (groups) per class.

    Args:
        labels: one label per case, None for unlabelled cases.
        k: number of folds.
        groups: optional group (patient) per case; then each class needs ``k`` distinct groups.
    """
    if k < 2:
        raise ValueError(f"k must be at least 2, got {k}")
    present = [(i, y) for i, y in enumerate(labels) if y is not None]
    counts = Counter(y for _, y in present)
    problems: list[str] = []
    unlabelled = len(labels) - len(present)
    if not present:
        problems.append(
            f"no labelled cases ({unlabelled} unlabelled): give cases a reference label at upload, "
            "import a dataset with labels, or let readers record diagnoses"
        )
    elif len(counts) < 2:
        ((only, n),) = counts.items()
        problems.append(
            f"only one class is labelled ({only!r}: {n} cases); evaluation needs labelled cases of "
            "at least two classes"
        )
    unit = "patients" if groups is not None else "labelled cases"
    for name in sorted(counts):
        n = counts[name] if groups is None else len({groups[i] for i, y in present if y == name})
        if n < k:
            problems.append(
                f"class {name!r} has {n} {unit}; {k}-fold cross-validation needs at least {k} per "
                f"class ({k - n} more)"
            )
    return LabelCheck(not problems, tuple(problems), dict(sorted(counts.items())))


def _order_key(key: str, seed: int) -> str:
    return hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()


def assign_folds(
    keys: Sequence[str],
    labels: Sequence[str],
    k: int = DEFAULT_FOLDS,
    *,
    groups: Sequence[str] | None = None,
    seed: int = 0,
) -> NDArray[np.int64]:
    """Fold (0..k-1) of every case, stratified by label, grouped by patient or content.

    Args:
        keys: content key per case (:func:`content_key`).
        labels: class per case (all labelled; see :func:`check_labels` first).
        k: number of folds.
        groups: patient key per case when known (all images of a patient share a fold).
        seed: changes the fold assignment; keep it fixed to compare runs.

    Returns:
        (n,) int64 fold of each case, in the order given.

    Raises:
        ValueError: when the labels do not support k folds (message from :func:`check_labels`).
    """
    if len(keys) != len(labels) or (groups is not None and len(groups) != len(keys)):
        raise ValueError("keys, labels and groups must have one entry per case")
    check = check_labels(list(labels), k, groups)
    if not check.ok:
        raise ValueError("; ".join(check.problems))
    group_of = list(groups) if groups is not None else list(keys)
    # Row order must not matter: sort by a seeded hash of (group, content, label) first.
    order = sorted(range(len(keys)), key=lambda i: (_order_key(group_of[i], seed), keys[i], str(labels[i])))
    y = np.array([str(labels[i]) for i in order])
    g = np.array([_order_key(group_of[i], seed) for i in order])
    folds = np.empty(len(keys), dtype=np.int64)
    # With one case per group the grouped splitter's greedy search (slow: it runs once per
    # repetition of the cross-validation) is not needed; plain stratified k-fold splits the same
    # hash-ordered cases.
    singletons = len(set(g.tolist())) == len(order)
    splitter: StratifiedKFold | StratifiedGroupKFold = (
        StratifiedKFold(n_splits=k, shuffle=False)
        if singletons
        else StratifiedGroupKFold(n_splits=k, shuffle=False)
    )
    split_groups = None if singletons else g
    for fold, (_, test) in enumerate(splitter.split(np.zeros(len(order)), y, groups=split_groups)):
        folds[np.asarray(order)[test]] = fold
    return folds
