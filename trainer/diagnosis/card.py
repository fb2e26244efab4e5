"""The diagnosis part of the model card (JSON) and the whole card as Markdown. No torch."""

from __future__ import annotations

from typing import Any

from trainer.diagnosis.head import DiagnosisHead

INTENDED_USE = (
    "Research and education: a second opinion shown to a reader only after their own diagnosis is "
    "submitted, and a way to measure whether gaze-guided pre-training helps on this dataset."
)
LIMITATIONS = [
    "Not for clinical use: not a medical device, not validated for diagnosis or treatment decisions.",
    "Trained and evaluated only on this dataset's images and labels; labels are readers' diagnoses "
    "(or reference labels where given), so the model learns their errors too.",
    "Calibration (temperature scaling) holds for data like the held-out cases; it is not guaranteed "
    "for other scanners, sites, populations or image processing.",
    "Small label sets give wide confidence intervals; read every figure with its interval and n.",
    "One image per case (the first frame for multi-frame DICOM); no clinical context is used.",
]
NOT_FOR_CLINICAL_USE = "NOT FOR CLINICAL USE"


def diagnosis_section(
    head: DiagnosisHead | None, report: dict[str, Any] | None, *, run: str
) -> dict[str, Any]:
    """Card keys ``diagnosis``, ``intended_use``, ``limitations``, ``clinical_use``.

    Args:
        head: the deployed head of this version, or None.
        report: ``metrics["diagnosis"]`` from ``trainer.diagnosis.fit.fit_heads``.
        run: this version's condition name (``mcgip`` or ``baseline``).
    """
    report = report or {}
    evaluation = report.get("evaluation") or {}
    section: dict[str, Any] = {
        "available": head is not None,
        "status": report.get("status", "not_fitted"),
        "problems": report.get("problems", []),
        "labels": list(head.classes) if head is not None else report.get("classes", []),
        "outputs": ["embedding", "probabilities"] if head is not None else ["embedding"],
    }
    if head is not None:
        section["head"] = head.info.get("fit", {})
        section["calibration"] = {
            **head.info.get("calibration", {}),
            **((report.get("heads") or {}).get(run, {}).get("calibration", {})),
        }
        section["calibration_note"] = calibration_note(section["calibration"])
    if evaluation:
        section["evaluation"] = {
            "status": evaluation.get("status"),
            "problems": evaluation.get("problems", []),
            "n_cases": evaluation.get("n_cases"),
            "n_folds": evaluation.get("n_folds"),
            "n_repeats": evaluation.get("n_repeats", 1),
            "class_counts": evaluation.get("class_counts", {}),
            "primary_metric": evaluation.get("primary_metric"),
            "conditions": evaluation.get("conditions", {}),
            "differences": evaluation.get("differences", {}),
            "verdict": evaluation.get("verdict"),
            "verdict_text": evaluation.get("verdict_text"),
            "protocol": evaluation.get("protocol", {}),
        }
    return {
        "diagnosis": section,
        "intended_use": INTENDED_USE,
        "limitations": LIMITATIONS,
        "clinical_use": NOT_FOR_CLINICAL_USE,
    }


def calibration_note(calibration: dict[str, Any]) -> str:
    """One sentence for API responses and the viewer: temperature and ECE before/after."""
    t = calibration.get("temperature")
    before = calibration.get("cv_ece_before") or {}
    after = calibration.get("cv_ece_after") or {}
    if isinstance(before, dict) and before.get("value") is not None and after.get("value") is not None:
        ece = (
            f"cross-validated ECE {before['value']:.3f} -> {after['value']:.3f} "
            f"(95% CI {_ci(after)}, n={calibration.get('n_cv', '?')})"
        )
    elif calibration.get("heldout_ece_after") is not None:
        ece = (
            f"held-out ECE {calibration.get('heldout_ece_before', float('nan')):.3f} -> "
            f"{calibration['heldout_ece_after']:.3f} (n={calibration.get('n_heldout')})"
        )
    else:
        ece = "calibration error not measured"
    temp = f"temperature-scaled (T={t:.2f})" if isinstance(t, int | float) else "not temperature-scaled"
    return f"Probabilities are {temp}; {ece}. {NOT_FOR_CLINICAL_USE}."


def _ci(value: dict[str, Any]) -> str:
    lo, hi = value.get("ci_low"), value.get("ci_high")
    return "n/a" if lo is None or hi is None else f"{lo:.3f} to {hi:.3f}"


def _fmt(value: Any) -> str:
    if isinstance(value, dict) and "value" in value:
        v = value.get("value")
        return "n/a" if v is None else f"{v:.3f} [{_ci(value)}]"
    return "n/a" if value is None else str(value)


def card_markdown(card: dict[str, Any]) -> str:
    """The model card as Markdown (what ``model_card.md`` holds)."""
    diag = card.get("diagnosis", {})
    counts = (card.get("snapshot") or {}).get("counts", {})
    lines = [
        f"# Model card: {card.get('name', 'mcgip')} ({card.get('run')})",
        "",
        f"**{card.get('clinical_use', NOT_FOR_CLINICAL_USE)}**",
        "",
        "## Model",
        f"- Method: {card.get('method')} pre-training, backbone {card.get('backbone')}, "
        f"{card.get('steps')} steps",
        f"- Input: {card.get('input', {}).get('size')} px, 1 channel; preprocessing "
        f"`{card.get('input', {}).get('preprocessing', {})}`",
        f"- Outputs: {', '.join(diag.get('outputs', ['embedding']))}",
        "",
        "## Data and labels",
        f"- Cases {counts.get('cases')}, labelled {counts.get('labelled')}, reading sessions "
        f"{counts.get('sessions')}, readers {counts.get('readers')}, "
        f"gaze-positive pairs {counts.get('positives')}",
        f"- Gaze pairs: {card.get('gaze', {})}",
        f"- Labels: {', '.join(diag.get('labels', [])) or 'none'}",
        "",
        "## Diagnosis head",
    ]
    if not diag.get("available"):
        lines.append(f"- No head: {'; '.join(diag.get('problems', [])) or 'not fitted for this version'}")
    else:
        head = diag.get("head", {})
        cal = diag.get("calibration", {})
        lines += [
            f"- {head.get('model')}; {head.get('n_train')} training cases {head.get('train_class_counts')}",
            f"- Calibration: {diag.get('calibration_note')}",
            f"- ECE before/after (cross-validated): {_fmt(cal.get('cv_ece_before'))} / "
            f"{_fmt(cal.get('cv_ece_after'))}",
        ]
    ev = diag.get("evaluation")
    if ev:
        lines += ["", "## Cross-validated metrics (95% CI)"]
        if ev.get("status") != "ok":
            lines.append(f"- Not available: {'; '.join(ev.get('problems', []))}")
        else:
            lines.append(
                f"n = {ev.get('n_cases')} labelled cases, {ev.get('n_repeats', 1)} x {ev.get('n_folds')}-fold"
                " CV; metrics: case-bootstrap CIs; differences to the baseline: "
                + str((ev.get("protocol") or {}).get("paired", "paired bootstrap"))
            )
            lines.append("")
            conds = ev.get("conditions", {})
            names = list(conds)
            lines.append("| metric | " + " | ".join(names) + " |")
            lines.append("| --- |" + " --- |" * len(names))
            for metric in ("head.accuracy", "head.balanced_accuracy", "head.macro_auc", "head.ece"):
                lines.append(f"| {metric} | " + " | ".join(_fmt(conds[n].get(metric)) for n in names) + " |")
            for cond, diffs in (ev.get("differences") or {}).items():
                d = diffs.get(ev.get("primary_metric"), {})
                lines.append("")
                lines.append(
                    f"- {cond} - baseline, {ev.get('primary_metric')}: {_fmt(d)}, p = {d.get('p_value')}"
                )
            lines.append(f"- Verdict: **{ev.get('verdict')}** ({ev.get('verdict_text')})")
    lines += ["", "## Intended use", card.get("intended_use", INTENDED_USE), "", "## Limitations"]
    lines += [f"- {item}" for item in card.get("limitations", LIMITATIONS)]
    return "\n".join(lines) + "\n"
