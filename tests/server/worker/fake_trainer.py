"""A stand-in for ``python -m trainer.api`` with the same CLI and JSON-lines output, but no torch.

It sleeps ``FAKE_STEP_S`` seconds per step, writes a checkpoint file every ``train.checkpoint_every``
steps, resumes from the newest one, and appends ``<run> <first step>`` to ``<out>/starts.log`` so
tests can see where each attempt began. Exit status 2 for a config with ``name == "invalid"``.
Exports take ``--format``/``--out`` pairs; formats named in ``FAKE_FAIL_EXPORT`` (comma-separated)
report ``export_failed``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import time
from pathlib import Path


def _emit(**record: object) -> None:
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


def _latest(folder: Path) -> int:
    steps = [
        int(m.group(1)) for p in folder.glob("step-*.pt") if (m := re.match(r"step-(\d{8})\.pt$", p.name))
    ]
    return max(steps, default=0)


def _evaluation(args: argparse.Namespace, runs: list[str]) -> dict[str, object]:
    """The real (torch-free) protocol on fixed random features of the snapshot's labelled cases."""
    import numpy as np

    from trainer.protocol import evaluate_conditions

    cases = json.loads(args.snapshot.read_text())["cases"]
    rng = np.random.default_rng(0)
    features = {run: rng.normal(size=(len(cases), 4)) for run in runs}
    return evaluate_conditions(features, [c["label"] for c in cases], [c["id"] for c in cases])


def train(args: argparse.Namespace) -> int:
    config = json.loads(args.config.read_text())
    if config.get("name") == "invalid":
        sys.stderr.write("error: invalid training config\n")
        return 2
    (args.out / "pid").parent.mkdir(parents=True, exist_ok=True)
    (args.out / "pid").write_text(str(os.getpid()))
    steps, every = config["train"]["steps"], config["train"]["checkpoint_every"]
    delay = float(os.environ.get("FAKE_STEP_S", "0.05"))
    gaze = config["gaze"]["enabled"]
    runs = (
        ["mcgip", "baseline"]
        if gaze and config["evaluation"]["baseline"] == "train"
        else (["mcgip"] if gaze else ["baseline"])
    )
    for run in runs:
        ckpts = args.out / run / "checkpoints"
        ckpts.mkdir(parents=True, exist_ok=True)
        start = _latest(ckpts)
        with open(args.out / "starts.log", "a") as log:
            log.write(f"{run} {start}\n")
        _emit(event="run_start", run=run, total_steps=steps)
        for step in range(start + 1, steps + 1):
            time.sleep(delay)
            _emit(
                event="progress",
                run=run,
                step=step,
                total_steps=steps,
                epoch=0,
                loss=1.0 / step,
                lr=0.1,
                positives_per_step=1.0,
                images_per_s=10.0,
                eta_s=(steps - step) * delay,
            )
            if step % every == 0 or step == steps:
                (ckpts / f"step-{step:08d}.pt").write_text(json.dumps({"step": step}))
                _emit(event="checkpoint", run=run, step=step, path=str(ckpts / f"step-{step:08d}.pt"))
        (args.out / run / "encoder.pt").write_bytes(f"encoder {run} {steps}".encode())
        _emit(event="run_end", run=run, steps=steps)
    _emit(event="evaluate", models=runs)
    metrics = {
        "side_by_side": {"knn.accuracy": {r: 0.5 for r in runs}},
        "evaluation": _evaluation(args, runs),
    }
    (args.out / "metrics.json").write_text(json.dumps(metrics))
    (args.out / "model_card.json").write_text(json.dumps({"format": "mcgip-model-card"}))
    _emit(event="done", encoder=str(args.out / runs[0] / "encoder.pt"), metrics=metrics["side_by_side"])
    return 0


def export(args: argparse.Namespace) -> int:
    if len(args.format) != len(args.out):
        sys.stderr.write("error: give --format/--out in pairs\n")
        return 2
    digest = hashlib.sha256(args.checkpoint.read_bytes()).hexdigest()
    failing = set(filter(None, os.environ.get("FAKE_FAIL_EXPORT", "").split(",")))
    for fmt, out in zip(args.format, args.out, strict=True):
        if fmt in failing:
            _emit(event="export_failed", format=fmt, error=f"{fmt} check failed")
            continue
        out.write_text(f"{fmt}:{digest}")
        _emit(event="exported", format=fmt, path=str(out))
    return 1 if failing & set(args.format) else 0


def main() -> int:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train")
    t.add_argument("--config", type=Path, required=True)
    t.add_argument("--snapshot", type=Path, required=True)
    t.add_argument("--out", type=Path, required=True)
    t.add_argument("--previous", type=Path)
    x = sub.add_parser("export")
    x.add_argument("--checkpoint", type=Path, required=True)
    x.add_argument("--format", required=True, action="append")
    x.add_argument("--out", type=Path, required=True, action="append")
    args = parser.parse_args()
    return train(args) if args.command == "train" else export(args)


if __name__ == "__main__":
    sys.exit(main())
