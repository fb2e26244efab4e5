"""Pooling, targets, figure and table of ``mcgip bench science`` (numpy, scipy, matplotlib).

Effects are differences of the primary metric to the no-gaze baseline in percentage points, taken
from the protocol's paired comparison of each training run. Training seeds of one data seed share
their data, so they are averaged first; the data seeds are the independent units of the pooled
95% t interval (scipy). One data seed gives no interval ("n/a").
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

__all__ = ["FACTORS", "markdown_table", "pool_effects", "print_summary", "targets", "write_figure"]

#: Swept factors in report order, with their axis labels.
FACTORS: dict[str, str] = {
    "noise_deg": "gaze noise (deg)",
    "readers": "readers",
    "labelled": "labelled fraction",
    "metric": "similarity metric",
    "finding": "finding size",
}
CONTROLS = ("mcgip", "shuffled", "random", "oracle")
TARGET_GAIN_PT = 5.0
TARGET_CONTROL_PT = 1.0
TARGET_PRECISION_RATIO = 2.0


def pooled_interval(values_by_seed: dict[int, list[float]]) -> dict[str, Any]:
    """Mean over data seeds of per-seed means, with a 95% t interval across data seeds."""
    means = np.array([float(np.mean(v)) for v in values_by_seed.values()], dtype=np.float64)
    n = int(means.size)
    runs = sum(len(v) for v in values_by_seed.values())
    if n == 0:
        return {"value": None, "ci_low": None, "ci_high": None, "n_data_seeds": 0, "n_runs": 0}
    value = float(means.mean())
    if n < 2:
        return {"value": value, "ci_low": None, "ci_high": None, "n_data_seeds": n, "n_runs": runs}
    half = float(stats.t.ppf(0.975, n - 1) * means.std(ddof=1) / math.sqrt(n))
    return {
        "value": value,
        "ci_low": value - half,
        "ci_high": value + half,
        "n_data_seeds": n,
        "n_runs": runs,
    }


def _select(
    records: Sequence[dict[str, Any]], factor: str, level: Any, default: dict[str, Any]
) -> tuple[list[dict[str, Any]], str]:
    """Records and McGIP condition name of the point ``factor = level`` (others at default)."""
    if factor == "labelled":
        chosen = [r for r in records if r["finding"] == default["finding"] and r["labelled"] == level]
        return chosen, "mcgip"
    if factor == "finding":
        return [r for r in records if r["finding"] == level and r["labelled"] == 1.0], "mcgip"
    chosen = [r for r in records if r["finding"] == default["finding"] and r["labelled"] == 1.0]
    return chosen, "mcgip" if level == default[factor] else f"mcgip@{factor}={level}"


def _point(records: Sequence[dict[str, Any]], condition: str, metric: str) -> dict[str, Any]:
    """Pooled effect (points) and mean pair precision of ``condition`` over ``records``."""
    effects: dict[int, list[float]] = defaultdict(list)
    precision: list[float] = []
    pairs: list[int] = []
    for rec in records:
        diff = rec["differences"].get(condition, {}).get(metric)
        if diff is not None and diff.get("value") is not None:
            effects[rec["data_seed"]].append(100.0 * float(diff["value"]))
        run = rec["runs"].get(condition)
        if run is not None:
            if run.get("pair_precision") is not None:
                precision.append(float(run["pair_precision"]))
            pairs.append(int(run["pairs"]))
    out = pooled_interval(dict(effects))
    out["pair_precision"] = float(np.mean(precision)) if precision else None
    out["pairs"] = float(np.mean(pairs)) if pairs else None
    return out


def pool_effects(
    records: Sequence[dict[str, Any]], sweeps: dict[str, list[Any]], default: dict[str, Any], metric: str
) -> dict[str, Any]:
    """Pooled effects at the default point (every condition) and along every swept factor (McGIP).

    Returns:
        ``{"metric", "default": {condition: point}, "baseline": {...}, "sweeps": {factor: [{"level",
        **point}]}}``; a point is ``{"value", "ci_low", "ci_high", "n_data_seeds", "n_runs",
        "pair_precision", "pairs"}`` with effects in percentage points.
    """
    base_records, _ = _select(records, "noise_deg", default["noise_deg"], default)
    out: dict[str, Any] = {"metric": metric, "default": {}, "sweeps": {}}
    for condition in CONTROLS:
        out["default"][condition] = _point(base_records, condition, metric)
    levels: dict[int, list[float]] = defaultdict(list)
    for rec in base_records:
        value = rec["conditions"].get("baseline", {}).get(metric, {}).get("value")
        if value is not None:
            levels[rec["data_seed"]].append(100.0 * float(value))
    out["baseline"] = pooled_interval(dict(levels))
    for factor in FACTORS:
        rows = []
        for level in sweeps.get(factor, []):
            chosen, condition = _select(records, factor, level, default)
            rows.append({"level": level, **_point(chosen, condition, metric)})
        out["sweeps"][factor] = rows
    return out


def targets(pooled: dict[str, Any], records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The issue's targets at the default (realistic) point: pass/fail with the figures behind them."""
    del records
    d = pooled["default"]
    gain, lo = d["mcgip"]["value"], d["mcgip"]["ci_low"]
    prec, shuf_prec = d["mcgip"]["pair_precision"], d["shuffled"]["pair_precision"]
    out = {
        "mcgip_gain": {
            "target": f">= +{TARGET_GAIN_PT:g} pt with the pooled 95% CI above 0",
            "value": gain,
            "ci_low": lo,
            "pass": gain is not None and lo is not None and gain >= TARGET_GAIN_PT and lo > 0,
        },
        "precision_ratio": {
            "target": f"McGIP pair precision >= {TARGET_PRECISION_RATIO:g}x shuffled",
            "value": prec / shuf_prec if prec and shuf_prec else None,
            "pass": bool(prec and shuf_prec and prec >= TARGET_PRECISION_RATIO * shuf_prec),
        },
    }
    for control in ("shuffled", "random"):
        value = d[control]["value"]
        out[f"{control}_control"] = {
            "target": f"<= baseline + {TARGET_CONTROL_PT:g} pt",
            "value": value,
            "pass": value is not None and value <= TARGET_CONTROL_PT,
        }
    return out


def _fmt(point: dict[str, Any]) -> str:
    if point.get("value") is None:
        return "n/a"
    if point.get("ci_low") is None:
        return f"{point['value']:+.1f} (CI n/a)"
    return f"{point['value']:+.1f} [{point['ci_low']:+.1f}, {point['ci_high']:+.1f}]"


def _prec(point: dict[str, Any]) -> str:
    return "-" if point.get("pair_precision") is None else f"{point['pair_precision']:.2f}"


def markdown_table(pooled: dict[str, Any], figures: dict[str, Any]) -> str:
    """The result tables (default point by condition, then every sweep point) as Markdown."""
    setup = figures["setup"]
    base = pooled["baseline"]
    lines = [
        f"Primary metric {pooled['metric']} (percentage points), effect = condition - no-gaze baseline, "
        f"pooled over {setup['data_seeds']} data seeds x {setup['train_seeds']} training seeds "
        f"(sweep points: {setup['sweep_train_seeds']} training seed(s)), 95% t interval across data seeds. "
        f"Baseline level {_fmt(base).replace('+', '')} %.",
        "",
        "| condition (default point) | effect, pt [95% CI] | runs | pairs | pair precision |",
        "|---|---|---|---|---|",
    ]
    for condition, point in pooled["default"].items():
        pairs = "-" if point["pairs"] is None else f"{point['pairs']:.0f}"
        lines.append(f"| {condition} | {_fmt(point)} | {point['n_runs']} | {pairs} | {_prec(point)} |")
    lines += [
        "",
        "| swept factor | level | McGIP effect, pt [95% CI] | runs | pair precision |",
        "|---|---|---|---|---|",
    ]
    for factor, rows in pooled["sweeps"].items():
        for row in rows:
            lines.append(
                f"| {FACTORS[factor]} | {row['level']} | {_fmt(row)} | {row['n_runs']} | {_prec(row)} |"
            )
    lines += ["", "| target | value | result |", "|---|---|---|"]
    for name, t in figures["targets"].items():
        value = (
            "n/a"
            if t["value"] is None
            else f"{t['value']:+.2f}"
            if "ratio" not in name
            else f"{t['value']:.2f}x"
        )
        lines.append(f"| {name}: {t['target']} | {value} | {'PASS' if t['pass'] else 'FAIL'} |")
    return "\n".join(lines) + "\n"


def write_figure(
    pooled: dict[str, Any], sweeps: dict[str, list[Any]], default: dict[str, Any], path: Path
) -> Path:
    """One panel per swept factor: McGIP effect with its 95% CI per level; controls at the default."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    factors = [f for f in FACTORS if sweeps.get(f)]
    fig, axes = plt.subplots(1, len(factors), figsize=(3.2 * len(factors), 3.4), sharey=True, squeeze=False)
    markers = {"shuffled": ("s", "tab:gray"), "random": ("^", "tab:orange"), "oracle": ("D", "tab:green")}
    for ax, factor in zip(axes[0], factors, strict=True):
        rows = pooled["sweeps"][factor]
        xs = np.arange(len(rows))
        for x, row in zip(xs, rows, strict=True):
            if row["value"] is None:
                continue
            err = None
            if row["ci_low"] is not None:
                err = [[row["value"] - row["ci_low"]], [row["ci_high"] - row["value"]]]
            ax.errorbar([x], [row["value"]], yerr=err, fmt="o", color="tab:blue", capsize=3,
                        label="McGIP" if x == 0 else None)  # fmt: skip
            if row["level"] == default[factor]:
                for k, (name, (marker, colour)) in enumerate(markers.items()):
                    point = pooled["default"][name]
                    if point["value"] is None:
                        continue
                    e = None
                    if point["ci_low"] is not None:
                        e = [[point["value"] - point["ci_low"]], [point["ci_high"] - point["value"]]]
                    label = name if factor == factors[0] else None
                    ax.errorbar([x + 0.12 * (k + 1)], [point["value"]], yerr=e, fmt=marker, color=colour,
                                capsize=2, markersize=4, label=label)  # fmt: skip
        ax.axhline(0.0, color="black", linewidth=0.8)
        ax.axhline(TARGET_GAIN_PT, color="tab:red", linewidth=0.8, linestyle="--")
        ax.set_xticks(xs, [str(r["level"]) for r in rows])
        ax.set_xlim(-0.5, len(rows) - 0.3)
        ax.set_xlabel(FACTORS[factor])
    axes[0][0].set_ylabel(f"effect vs baseline, pt ({pooled['metric']})")
    axes[0][0].legend(fontsize=7, loc="best")
    fig.suptitle("McGIP - no-gaze baseline, pooled 95% CI (dashed: +5 pt target)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def print_summary(pooled: dict[str, Any], verdicts: dict[str, Any], figures: dict[str, Any]) -> None:
    """The table and the target lines on stdout."""
    print(markdown_table(pooled, figures))
    for name, t in verdicts.items():
        value = "n/a" if t["value"] is None else f"{t['value']:+.2f}"
        print(f"target {name} ({t['target']}): {'PASS' if t['pass'] else 'FAIL'} ({value})")
    timing = figures["timing"]
    if timing["train_s_mean"] is not None:
        print(
            f"{timing['training_runs']} pre-trainings, {timing['train_s_mean']:.1f} s each on average; "
            f"total {timing['total_s']:.0f} s"
        )
