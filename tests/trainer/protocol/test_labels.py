"""Label precedence and reader agreement."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from trainer.protocol.labels import fleiss_kappa, latest_per_reader, reader_agreement, resolve_labels


def test_precedence_reference_then_dataset_then_reader_majority() -> None:
    reference = {1: "mass", 2: None, 3: None, 4: None, 5: None}
    attributes = {2: {"egd-cxr": {"label": "chf"}}, 3: {"egd-cxr": {"findings": {"x": 1}}}}
    readings = {
        1: {"r1": "normal", "r2": "normal"},
        2: {"r1": "normal"},
        3: {"r1": "mass", "r2": "mass", "r3": "normal"},
        4: {"r1": "mass", "r2": "normal"},
    }
    labels, summary = resolve_labels(reference, attributes, readings)
    assert {c: (r.label, r.source) for c, r in labels.items()} == {
        1: ("mass", "reference"),
        2: ("chf", "dataset"),
        3: ("mass", "readers"),
        4: (None, "readers_tied"),
        5: (None, "none"),
    }
    assert summary.sources == {"reference": 1, "dataset": 1, "readers": 1, "readers_tied": 1, "none": 1}
    assert summary.to_dict()["agreement"]["majority_vs_reference"] == {"agreement": 0.0, "n_cases": 1}


def test_latest_diagnosis_per_reader_counts_once() -> None:
    rows = [(1, "r1", "mass", 1), (1, "r1", "normal", 2), (1, "r2", "mass", 1)]
    assert latest_per_reader(rows) == {1: {"r1": "normal", "r2": "mass"}}


def test_cohen_kappa_for_two_readers() -> None:
    rng = np.random.default_rng(0)
    a = rng.choice(["x", "y", "z"], 40).tolist()
    b = [v if rng.random() < 0.7 else "x" for v in a]
    readings = {i: {"r1": a[i], "r2": b[i]} for i in range(40)}
    got = reader_agreement(readings)
    assert got["kappa"]["kind"] == "cohen" and got["kappa"]["n_cases"] == 40
    assert got["kappa"]["value"] == pytest.approx(cohen_kappa_score(a, b))


def test_fleiss_kappa_reference_values() -> None:
    # Perfect agreement -> 1; raters split evenly on every subject -> below 0.
    assert fleiss_kappa(np.array([[3, 0], [0, 3], [3, 0]])) == pytest.approx(1.0)
    assert fleiss_kappa(np.array([[1, 1], [1, 1]])) < 0
    # Fleiss (1971)-style hand computation: 4 subjects, 3 raters, 2 categories.
    table = np.array([[3, 0], [2, 1], [1, 2], [0, 3]])
    p_bar = np.mean([1, 1 / 3, 1 / 3, 1])
    p_e = 0.5**2 + 0.5**2
    assert fleiss_kappa(table) == pytest.approx((p_bar - p_e) / (1 - p_e))
    readings = {i: {"a": "m", "b": "m", "c": "m" if i % 2 else "n"} for i in range(6)}
    got = reader_agreement(readings)
    assert got["kappa"]["kind"] == "fleiss" and got["kappa"]["n_cases"] == 6
    with pytest.raises(ValueError):
        fleiss_kappa(np.array([[2, 0], [1, 0]]))


def test_target_finding_turns_multi_label_imports_into_one_binary_question() -> None:
    """EGD-CXR finding/CheXpert columns (1/0/-1) and REFLACX certainties (0-5) -> finding / no finding."""
    from trainer.protocol.labels import FindingTarget, resolve_finding_labels

    target = FindingTarget("Pleural effusion", threshold=3.0)
    attributes = {
        1: {"egd-cxr": {"condition": "CHF", "chexpert": {"Pleural_Effusion": 1}, "label": "CHF"}},
        2: {"egd-cxr": {"chexpert": {"pleural effusion": 0}}},
        3: {"egd-cxr": {"chexpert": {"Pleural Effusion": -1}}},  # uncertain: readers decide
        4: None,
        5: None,
    }
    readings = {
        3: {"a": {"reflacx": {"certainty": {"Pleural effusion": 4.0}}}},
        4: {
            "a": {"reflacx": {"certainty": {"Pleural effusion": 2.0, "Atelectasis": 5.0}}},
            "b": {"reflacx": {"certainty": {"Pleural effusion": 1.0}}},
            "c": {"reflacx": {"certainty": {"Pleural effusion": 3.0}}},
        },
        5: {"a": {"reflacx": {"certainty": {"Atelectasis": 5.0}}}},  # phase without the finding
    }
    labels, summary = resolve_finding_labels(target, attributes, readings)
    assert {c: (r.label, r.source) for c, r in labels.items()} == {
        1: ("Pleural effusion", "dataset"),
        2: ("no Pleural effusion", "dataset"),
        3: ("Pleural effusion", "readers"),
        4: ("no Pleural effusion", "readers"),
        5: (None, "none"),
    }
    assert summary.target is not None and summary.target["labelled_cases"] == 4
    assert summary.problems == []


def test_target_finding_nobody_rated_says_which_findings_exist() -> None:
    from trainer.protocol.labels import FindingTarget, resolve_finding_labels

    labels, summary = resolve_finding_labels(
        FindingTarget("Edema"),
        {1: {"egd-cxr": {"chexpert": {"Cardiomegaly": 1}}}},
        {1: {"a": {"reflacx": {"certainty": {"Atelectasis": 4.0}}}}},
    )
    assert all(r.label is None for r in labels.values())
    assert summary.problems == [
        "no imported label rates the target finding 'Edema' (looked for EGD-CXR finding/CheXpert "
        "columns and REFLACX certainty labels); findings present: Atelectasis, Cardiomegaly"
    ]
    assert summary.to_dict()["problems"] == summary.problems
