"""Folds: content-keyed, stratified, grouped, identical across conditions and datasets."""

from __future__ import annotations

import numpy as np
import pytest

from trainer.protocol import assign_folds, check_labels, content_key, evaluate_conditions


def _cases(n: int, classes: int = 3, seed: int = 0) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(seed)
    images = [rng.integers(0, 4096, size=(8, 8), dtype=np.uint16) for _ in range(n)]
    keys = [content_key(im) for im in images]
    labels = [f"c{i % classes}" for i in range(n)]
    return keys, labels


def test_content_key_depends_on_pixels_not_container() -> None:
    a = np.arange(64, dtype=np.uint16).reshape(8, 8)
    assert content_key(a) == content_key(a.copy(order="F"))
    assert content_key(a) != content_key(a.astype(np.uint8))
    b = a.copy()
    b[0, 0] += 1
    assert content_key(a) != content_key(b)


def test_folds_are_stratified_and_cover_every_case() -> None:
    keys, labels = _cases(100, classes=4)
    folds = assign_folds(keys, labels, 5)
    assert sorted(set(folds.tolist())) == [0, 1, 2, 3, 4]
    for c in {*labels}:
        per_fold = np.bincount(folds[np.array(labels) == c], minlength=5)
        assert per_fold.max() - per_fold.min() <= 1, per_fold


def test_same_images_same_folds_in_any_order_and_dataset() -> None:
    keys, labels = _cases(60)
    folds = dict(zip(keys, assign_folds(keys, labels, 5).tolist(), strict=True))
    # A second dataset holding the same images under other ids, in another order.
    perm = np.random.default_rng(1).permutation(60)
    keys2 = [keys[i] for i in perm]
    labels2 = [labels[i] for i in perm]
    folds2 = dict(zip(keys2, assign_folds(keys2, labels2, 5).tolist(), strict=True))
    assert folds == folds2
    assert assign_folds(keys, labels, 5, seed=1).tolist() != list(folds.values())


def test_duplicates_and_patients_never_straddle_folds() -> None:
    keys, labels = _cases(50, classes=2)
    dup_keys, dup_labels = keys + keys[:10], labels + labels[:10]
    folds = assign_folds(dup_keys, dup_labels, 5)
    assert (folds[:10] == folds[50:]).all()
    patients = [f"p{i // 3}" for i in range(len(keys))]
    folds = assign_folds(keys, labels, 5, groups=patients)
    for p in set(patients):
        assert len({int(f) for f, q in zip(folds, patients, strict=True) if q == p}) == 1


def test_every_condition_is_scored_on_the_same_folds() -> None:
    keys, labels = _cases(60, classes=2)
    rng = np.random.default_rng(0)
    feats = {name: rng.normal(size=(60, 4)) for name in ("baseline", "mcgip", "shuffled")}
    report = evaluate_conditions(feats, labels, keys)
    assert report["status"] == "ok"
    assert report["fold_sizes"] == [12, 12, 12, 12, 12]
    assert set(report["conditions"]) == {"baseline", "mcgip", "shuffled"}
    assert set(report["differences"]) == {"mcgip", "shuffled"}


def test_too_few_labels_are_named_exactly() -> None:
    check = check_labels([None, None, None])
    assert not check.ok and "no labelled cases (3 unlabelled)" in check.problems[0]
    check = check_labels(["a"] * 8)
    assert not check.ok
    assert check.problems[0].startswith("only one class is labelled ('a': 8 cases)")
    check = check_labels(["a"] * 8 + ["b"] * 3 + [None])
    assert check.problems == (
        "class 'b' has 3 labelled cases; 5-fold cross-validation needs at least 5 per class (2 more)",
    )
    check = check_labels(["a"] * 6 + ["b"] * 6, groups=["p1"] * 6 + [f"q{i}" for i in range(6)])
    assert check.problems == (
        "class 'a' has 1 patients; 5-fold cross-validation needs at least 5 per class (4 more)",
    )
    keys, _ = _cases(11)
    report = evaluate_conditions({"baseline": np.zeros((11, 2))}, ["a"] * 8 + ["b"] * 3, keys)
    assert report["status"] == "insufficient_labels"
    assert report["verdict"] == "cannot tell"
    assert "class 'b' has 3 labelled cases" in report["verdict_text"]
    with pytest.raises(ValueError, match="class 'b' has 3"):
        assign_folds(keys, ["a"] * 8 + ["b"] * 3)
