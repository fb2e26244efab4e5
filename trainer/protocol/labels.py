"""Resolving one evaluation label per case from every source, and how far readers agree.

Precedence (first that gives a label wins; documented in docs/evaluation.md):

1. ``reference`` - the case's reference label: given at upload, or set by an importer from the
   labels a public dataset publishes. Curated ground truth beats a reading.
2. ``dataset`` - a single-class ``label`` an importer stored in the case's attributes
   (``{"<source>": {"label": "..."}}``), when no reference label is set.
3. ``readers`` - the majority of the readers' diagnoses (each reader's latest diagnosis counts
   once; imported readings count as readers). A tie leaves the case unlabelled: a coin flip is
   not ground truth.

With a **target finding** (dataset setting ``labels.target_finding``) the classes are
``<finding>`` / ``no <finding>`` instead (:class:`FindingTarget`, :func:`resolve_finding_labels`):
multi-label public datasets (EGD-CXR's finding and CheXpert columns, REFLACX's per-abnormality
certainty) become one binary question, with the same precedence of a curated dataset label over
the readers' majority.

Agreement between readers: Cohen's kappa (scikit-learn) for two readers on the cases both read,
Fleiss' kappa for three or more on the cases all of them read. Numpy and scikit-learn only.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import numpy as np
from sklearn.metrics import cohen_kappa_score

__all__ = [
    "FindingTarget",
    "LabelSummary",
    "ResolvedLabel",
    "case_finding_label",
    "fleiss_kappa",
    "reader_agreement",
    "reading_finding_label",
    "resolve_finding_labels",
    "resolve_labels",
]

SOURCES = ("reference", "dataset", "readers")


@dataclass(frozen=True)
class ResolvedLabel:
    """A case's evaluation label and where it came from (``label`` None: unlabelled, ``source`` says why)."""

    label: str | None
    source: str


@dataclass
class LabelSummary:
    """Counts per source plus reader agreement, stored with every snapshot and evaluation."""

    sources: dict[str, int] = field(default_factory=dict)
    agreement: dict[str, Any] = field(default_factory=dict)
    #: The target finding, when labels were derived from one (:func:`resolve_finding_labels`).
    target: dict[str, Any] | None = None
    #: What is missing for evaluation, in words (e.g. no imported label names the target finding).
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out = {"sources": dict(self.sources), "agreement": dict(self.agreement), "precedence": list(SOURCES)}
        if self.target is not None:
            out["target"] = dict(self.target)
        if self.problems:
            out["problems"] = list(self.problems)
        return out


def _dataset_label(attributes: Mapping[str, Any] | None) -> str | None:
    for value in (attributes or {}).values():
        if isinstance(value, Mapping) and isinstance(value.get("label"), str) and value["label"]:
            return str(value["label"])
    return None


def resolve_labels(
    reference: Mapping[int, str | None],
    attributes: Mapping[int, Mapping[str, Any] | None],
    readings: Mapping[int, Mapping[str, str]],
) -> tuple[dict[int, ResolvedLabel], LabelSummary]:
    """One label per case by the module's precedence, and the reader agreement summary.

    Args:
        reference: case -> reference label (None when not set), for every case.
        attributes: case -> importer attributes.
        readings: case -> {reader: that reader's latest diagnosis}.

    Returns:
        (case -> resolved label, summary with counts per source and agreement).
    """
    out: dict[int, ResolvedLabel] = {}
    for case in reference:
        ref = reference[case]
        if ref:
            out[case] = ResolvedLabel(ref, "reference")
            continue
        ds = _dataset_label(attributes.get(case))
        if ds:
            out[case] = ResolvedLabel(ds, "dataset")
            continue
        votes = Counter(readings.get(case, {}).values())
        if not votes:
            out[case] = ResolvedLabel(None, "none")
            continue
        (top, n), *rest = votes.most_common()
        if rest and rest[0][1] == n:
            out[case] = ResolvedLabel(None, "readers_tied")
        else:
            out[case] = ResolvedLabel(top, "readers")
    summary = LabelSummary(sources=dict(Counter(r.source for r in out.values())))
    summary.agreement = reader_agreement(readings, reference)
    return out, summary


def fleiss_kappa(table: np.ndarray) -> float:
    """Fleiss' kappa of an (N subjects, C categories) table of rating counts, same raters per row.

    kappa = (P_bar - P_e) / (1 - P_e) with P_i the agreeing rater pairs of subject i over all pairs
    and P_e the sum of squared category shares (Fleiss 1971).
    """
    counts = np.asarray(table, dtype=np.float64)
    n = counts.sum(1)
    if counts.shape[0] == 0 or not np.all(n == n[0]) or n[0] < 2:
        raise ValueError("fleiss_kappa needs at least one subject and the same number (>= 2) of raters each")
    m = n[0]
    p_i = ((counts * (counts - 1)).sum(1)) / (m * (m - 1))
    p_bar = p_i.mean()
    share = counts.sum(0) / counts.sum()
    p_e = float((share**2).sum())
    return float("nan") if p_e == 1.0 else float((p_bar - p_e) / (1 - p_e))


def reader_agreement(
    readings: Mapping[int, Mapping[str, str]], reference: Mapping[int, str | None] | None = None
) -> dict[str, Any]:
    """Agreement between readers (kappa) and of the readers' majority with the reference label.

    Returns:
        ``{"readers": n, "kappa": {"kind": "cohen"|"fleiss", "value", "n_cases"} | None,
        "pairwise": [{"readers": [a, b], "kappa", "n_cases"}], "majority_vs_reference":
        {"agreement", "n_cases"} | None}``.
    """
    readers = sorted({r for per_case in readings.values() for r in per_case})
    out: dict[str, Any] = {"readers": len(readers), "kappa": None, "pairwise": []}
    for a, b in combinations(readers, 2):
        both = [c for c, per in readings.items() if a in per and b in per]
        if len(both) < 2:
            continue
        ya, yb = [readings[c][a] for c in both], [readings[c][b] for c in both]
        kappa = 1.0 if ya == yb else float(cohen_kappa_score(ya, yb))
        out["pairwise"].append({"readers": [a, b], "kappa": _finite(kappa), "n_cases": len(both)})
    if len(readers) == 2 and out["pairwise"]:
        pair = out["pairwise"][0]
        out["kappa"] = {"kind": "cohen", "value": pair["kappa"], "n_cases": pair["n_cases"]}
    elif len(readers) >= 3:
        full = [c for c, per in readings.items() if all(r in per for r in readers)]
        cats = sorted({v for c in full for v in readings[c].values()})
        if len(full) >= 2:
            table = np.array([[sum(readings[c][r] == k for r in readers) for k in cats] for c in full])
            value = fleiss_kappa(table)
            out["kappa"] = {"kind": "fleiss", "value": _finite(value), "n_cases": len(full)}
    if reference:
        agree = [
            Counter(per.values()).most_common(1)[0][0] == reference[c]
            for c, per in readings.items()
            if per and reference.get(c)
        ]
        if agree:
            out["majority_vs_reference"] = {"agreement": sum(agree) / len(agree), "n_cases": len(agree)}
    return out


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def latest_per_reader(rows: Sequence[tuple[int, str, str, Any]]) -> dict[int, dict[str, str]]:
    """case -> {reader: latest label} from ``(case, reader, label, created_at)`` rows."""
    best: dict[tuple[int, str], tuple[Any, str]] = {}
    for case, reader, label, at in rows:
        key = (case, reader)
        if key not in best or at >= best[key][0]:
            best[key] = (at, label)
    out: dict[int, dict[str, str]] = {}
    for (case, reader), (_, label) in best.items():
        out.setdefault(case, {})[reader] = label
    return out


#: REFLACX certainty (0-5) at or above which a finding counts as present ("Possibly").
DEFAULT_CERTAINTY_THRESHOLD = 3.0


@dataclass(frozen=True)
class FindingTarget:
    """One finding evaluated as a binary question.

    Attributes:
        finding: the finding's name as the imported labels spell it (case, spaces and underscores
            ignored), e.g. ``"Pleural effusion"``.
        threshold: a REFLACX certainty at or above it counts as present.
    """

    finding: str
    threshold: float = DEFAULT_CERTAINTY_THRESHOLD

    @property
    def positive(self) -> str:
        return self.finding

    @property
    def negative(self) -> str:
        return f"no {self.finding}"

    def matches(self, name: str) -> bool:
        return _norm(name) == _norm(self.finding)


def _norm(name: str) -> str:
    return " ".join(str(name).replace("_", " ").lower().split())


def case_finding_label(attributes: Mapping[str, Any] | None, target: FindingTarget) -> str | None:
    """The target's label from a case's imported 0/1/-1 finding columns (EGD-CXR ``findings`` and
    ``chexpert``): 1 present, 0 absent; -1 (uncertain) or missing says nothing."""
    for value in (attributes or {}).values():
        if not isinstance(value, Mapping):
            continue
        for group in ("findings", "chexpert"):
            flags = value.get(group)
            if not isinstance(flags, Mapping):
                continue
            for name, flag in flags.items():
                if target.matches(name) and flag in (0, 1):
                    return target.positive if flag == 1 else target.negative
    return None


def reading_finding_label(attributes: Mapping[str, Any] | None, target: FindingTarget) -> str | None:
    """The target's label from one imported reading's certainty labels (REFLACX ``certainty``):
    present when the certainty is at least ``target.threshold``; None when the reading does not
    rate the finding (REFLACX's phases rate different finding lists)."""
    for value in (attributes or {}).values():
        certainty = value.get("certainty") if isinstance(value, Mapping) else None
        if not isinstance(certainty, Mapping):
            continue
        for name, level in certainty.items():
            if target.matches(name) and isinstance(level, int | float):
                return target.positive if float(level) >= target.threshold else target.negative
    return None


def _finding_names(
    attributes: Mapping[int, Mapping[str, Any] | None],
    reading_attributes: Mapping[int, Mapping[str, Mapping[str, Any] | None]],
) -> list[str]:
    names: set[str] = set()
    for attrs in attributes.values():
        for value in (attrs or {}).values():
            if isinstance(value, Mapping):
                for group in ("findings", "chexpert"):
                    if isinstance(value.get(group), Mapping):
                        names.update(str(k) for k in value[group])
    for per_reader in reading_attributes.values():
        for attrs in per_reader.values():
            for value in (attrs or {}).values():
                if isinstance(value, Mapping) and isinstance(value.get("certainty"), Mapping):
                    names.update(str(k) for k in value["certainty"])
    return sorted(names, key=_norm)


def resolve_finding_labels(
    target: FindingTarget,
    attributes: Mapping[int, Mapping[str, Any] | None],
    reading_attributes: Mapping[int, Mapping[str, Mapping[str, Any] | None]],
) -> tuple[dict[int, ResolvedLabel], LabelSummary]:
    """One ``<finding>`` / ``no <finding>`` label per case, by :func:`resolve_labels`' precedence.

    Reference labels are about the dataset's own classes, not this finding, so they are not used;
    the case's imported finding columns are the ``dataset`` source and each reader's latest
    reading's certainty the ``readers`` source.

    Args:
        target: the finding and its certainty threshold.
        attributes: case -> importer attributes, for every case.
        reading_attributes: case -> {reader: attributes of that reader's latest diagnosis}.
    """
    derived = {case: case_finding_label(attrs, target) for case, attrs in attributes.items()}
    readings = {
        case: {
            reader: label
            for reader, attrs in per_reader.items()
            if (label := reading_finding_label(attrs, target)) is not None
        }
        for case, per_reader in reading_attributes.items()
    }
    resolved, summary = resolve_labels(
        dict.fromkeys(attributes),
        {case: {"finding": {"label": label}} if label else None for case, label in derived.items()},
        {case: per for case, per in readings.items() if per},
    )
    labelled = sum(r.label is not None for r in resolved.values())
    summary.target = {
        "finding": target.finding,
        "threshold": target.threshold,
        "positive": target.positive,
        "negative": target.negative,
        "labelled_cases": labelled,
    }
    if labelled == 0:
        seen = _finding_names(attributes, reading_attributes)
        summary.problems.append(
            f"no imported label rates the target finding {target.finding!r} (looked for EGD-CXR "
            "finding/CheXpert columns and REFLACX certainty labels); "
            + (
                f"findings present: {', '.join(seen)}"
                if seen
                else "no case or reading carries finding labels"
            )
        )
    return resolved, summary
