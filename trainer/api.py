"""The one entry point of the trainer: ``train``, ``evaluate``, ``export_model`` and the CLI.

The worker runs ``python -m trainer.api train --config FILE --snapshot FILE --out DIR`` in a
subprocess (or under ``torchrun --nproc-per-node N -m trainer.api train ...`` for several GPUs) and
reads one JSON object per line from its stdout (see docs/trainer.md). The trainer never touches the
database or HTTP: everything comes in through the config and the snapshot manifest.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from trainer import distributed
from trainer.callbacks import Callback, CallbackList, JsonLinesCallback
from trainer.config import ConfigError, EvalConfig, TrainConfig
from trainer.contract import (
    EXIT_FAILED,
    EXIT_INVALID,
    EXIT_OK,
    EvaluateRequest,
    Exported,
    ExportFailed,
    TrainRequest,
)
from trainer.crossval import cross_validate
from trainer.data.snapshot import Snapshot, SnapshotError, load_snapshot
from trainer.diagnosis.card import card_markdown
from trainer.diagnosis.fit import fit_heads
from trainer.diagnosis.head import head_beside
from trainer.evaluate import side_by_side
from trainer.export import FORMATS, build_model_card, export_encoder, write_json
from trainer.loop import resolve_device
from trainer.pipeline import evaluate_encoder_file, prepare_data, save_untrained_encoder, train_one

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    """Files and figures of a finished training job.

    Attributes:
        out_dir: the job folder. encoder: the trained encoder (``mcgip/encoder.pt``, or
        ``baseline/encoder.pt`` when gaze is disabled). baseline_encoder: the no-gaze baseline's.
        metrics: ``{"mcgip": report, "baseline": report, "previous": report, "side_by_side": table}``.
        model_card: path of ``model_card.json``. steps: optimizer steps of the main run.
        losses: per-step loss of the main run.
    """

    out_dir: Path
    encoder: Path
    baseline_encoder: Path | None
    metrics: dict[str, Any]
    model_card: Path | None
    steps: int
    losses: list[float] = field(default_factory=list)


def _as_callback(callbacks: Callback | Sequence[Callback] | None) -> Callback:
    if callbacks is None:
        return Callback()
    if isinstance(callbacks, Callback):
        return callbacks
    return CallbackList(list(callbacks))


def train(
    config: TrainConfig,
    snapshot: Snapshot | str | Path,
    out_dir: str | Path,
    callbacks: Callback | Sequence[Callback] | None = None,
    resume: bool = True,
    previous: str | Path | None = None,
) -> TrainResult:
    """Pre-train the encoder on the snapshot, train the no-gaze baseline, evaluate both, write the card.

    Args:
        config: validated training config.
        snapshot: snapshot object or manifest path.
        out_dir: job folder (checkpoints, encoders, metrics.json, model_card.json).
        callbacks: progress sinks.
        resume: continue from the newest checkpoints in ``out_dir`` (after a crash or kill).
        previous: encoder.pt of the previous model version, evaluated on the same split.

    Returns:
        TrainResult (metrics are only complete on the main rank under torchrun).
    """
    out = Path(out_dir)
    snap = snapshot if isinstance(snapshot, Snapshot) else load_snapshot(snapshot)
    device = resolve_device(config.train.device)
    dist_info = distributed.init_from_env(device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    cb = _as_callback(callbacks)
    prepared = prepare_data(config, snap)
    main_run = "mcgip" if config.gaze.enabled else "baseline"
    runs: list[tuple[str, TrainConfig]] = [(main_run, config)]
    if config.gaze.enabled and config.evaluation.baseline == "train":
        runs.append(("baseline", config.without_gaze()))
    if dist_info.is_main:
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "config.json", config.to_dict())
    encoders: dict[str, Path] = {}
    main_result = None
    for run, cfg in runs:
        result, path = train_one(
            cfg, prepared, out / run, run=run, callbacks=cb, device=device, resume=resume
        )
        encoders[run] = path
        main_result = main_result or result
    assert main_result is not None
    metrics: dict[str, Any] = {}
    card_path: Path | None = None
    if dist_info.is_main:
        cb.on_event("evaluate", {"models": sorted(encoders) + (["previous"] if previous else [])})
        to_eval = dict(encoders)
        if previous is not None:
            to_eval["previous"] = Path(previous)
        metrics = _evaluate_all(to_eval, prepared, config.evaluation, device, config.train.seed)
        # The untrained starting point is a condition of the cross-validated evaluation only: it
        # shows how much of a score comes from training at all.
        conditions = dict(to_eval)
        conditions["untrained"] = save_untrained_encoder(config, prepared, out / "untrained" / "encoder.pt")
        metrics["evaluation"] = _cross_validated(conditions, prepared, config.evaluation, device)
        # A calibrated diagnosis head per trained encoder (McGIP and baseline), evaluated by CV.
        metrics["diagnosis"] = fit_heads(encoders, prepared, device=device, seed=config.train.seed)
        write_json(out / "metrics.json", metrics)
        from trainer.export import load_encoder

        _, info = load_encoder(encoders[main_run])
        card = build_model_card(
            info,
            files={"encoder": encoders[main_run]},
            metrics=metrics,
            head=head_beside(encoders[main_run]),
        )
        card_path = write_json(out / "model_card.json", card)
        (out / "model_card.md").write_text(card_markdown(card), encoding="utf-8")
        cb.on_event("done", {"encoder": str(encoders[main_run]), "metrics": metrics.get("side_by_side", {})})
    distributed.barrier()
    return TrainResult(
        out_dir=out,
        encoder=encoders[main_run],
        baseline_encoder=encoders.get("baseline"),
        metrics=metrics,
        model_card=card_path,
        steps=main_result.steps,
        losses=main_result.losses,
    )


def _cross_validated(
    encoders: dict[str, Path], prepared: Any, config: EvalConfig, device: torch.device
) -> dict[str, Any]:
    """The cross-validated report with the snapshot's label provenance attached."""
    report = cross_validate(encoders, prepared.snapshot, prepared.store, config, device=device)
    report["labels"] = prepared.snapshot.metadata.get("labels", {})
    if report.get("status") == "insufficient_labels":
        # What the label sources lacked (e.g. no imported label rates the target finding) first.
        extra = [p for p in report["labels"].get("problems", []) if p not in report["problems"]]
        report["problems"] = extra + list(report["problems"])
        report["verdict_text"] = "cannot tell: " + "; ".join(report["problems"])
    return report


def _evaluate_all(
    encoders: dict[str, Path], prepared: Any, config: EvalConfig, device: torch.device, seed: int
) -> dict[str, Any]:
    reports = {
        name: evaluate_encoder_file(path, prepared, config, device=device, seed=seed)
        for name, path in encoders.items()
    }
    metrics: dict[str, Any] = dict(reports)
    metrics["side_by_side"] = side_by_side(reports)
    if "mcgip" in reports and "baseline" in reports:
        metrics["delta_vs_baseline"] = {
            metric: values["mcgip"] - values["baseline"]
            for metric, values in metrics["side_by_side"].items()
            if "mcgip" in values and "baseline" in values
        }
    return metrics


def evaluate(
    encoders: dict[str, str | Path],
    snapshot: Snapshot | str | Path,
    config: TrainConfig | None = None,
    device: str = "auto",
) -> dict[str, Any]:
    """Evaluate saved encoders side by side on the snapshot's fixed held-out split.

    Args:
        encoders: name -> encoder.pt (e.g. {"mcgip": ..., "baseline": ..., "previous": ...}).
        snapshot: snapshot object or manifest path.
        config: provides data loading and evaluation settings (defaults otherwise).
        device: ``auto``, ``cpu`` or ``cuda``.

    Returns:
        ``{name: report, "side_by_side": table[, "delta_vs_baseline": ...], "evaluation": cv report}``.
    """
    cfg = config or TrainConfig()
    snap = snapshot if isinstance(snapshot, Snapshot) else load_snapshot(snapshot)
    prepared = prepare_data(cfg, snap)
    dev = resolve_device(device)
    paths = {k: Path(v) for k, v in encoders.items()}
    metrics = _evaluate_all(paths, prepared, cfg.evaluation, dev, cfg.train.seed)
    metrics["evaluation"] = _cross_validated(paths, prepared, cfg.evaluation, dev)
    return metrics


def export_model(checkpoint: str | Path, fmt: str, out_path: str | Path) -> Path:
    """Export encoder.pt or a training checkpoint: ``torchscript``, ``onnx``, ``safetensors``, ``card``
    or ``card-md``; a ``head.json`` beside it adds the calibrated ``probabilities`` output."""
    return export_encoder(checkpoint, fmt, out_path)


# --------------------------------------------------------------------------- CLI
def _export_cli(checkpoint: Path, formats: list[str], outs: list[Path]) -> int:
    """Export to every (format, out) pair in one process (torch is imported once).

    A failed format does not stop the others; each result is one JSON line on stdout.

    Returns:
        0 when every export succeeded, 1 when any failed, 2 when the pairs do not match.
    """
    if len(formats) != len(outs):
        sys.stderr.write(f"error: {len(formats)} --format but {len(outs)} --out; give them in pairs\n")
        return EXIT_INVALID
    failed = 0
    for fmt, out in zip(formats, outs, strict=True):
        try:
            path = export_model(checkpoint, fmt, out)
        except (RuntimeError, ValueError, OSError) as exc:
            logger.exception("export to %s failed", fmt)
            sys.stdout.write(ExportFailed(format=fmt, error=str(exc)).line() + "\n")
            failed += 1
            continue
        sys.stdout.write(Exported(format=fmt, path=str(path)).line() + "\n")
    return EXIT_FAILED if failed else EXIT_OK


def train_request(args: argparse.Namespace) -> TrainRequest:
    """The parsed ``train`` command line as the contract's request."""
    return TrainRequest(
        config=args.config,
        snapshot=args.snapshot,
        out=args.out,
        resume=not args.no_resume,
        previous=args.previous,
        progress=args.progress,
    )


def evaluate_request(args: argparse.Namespace) -> EvaluateRequest:
    """The parsed ``evaluate`` command line as the contract's request."""
    encoders = dict(item.split("=", 1) for item in args.encoder)
    return EvaluateRequest(
        snapshot=args.snapshot,
        encoders={name: Path(path) for name, path in encoders.items()},
        config=args.config,
        out=args.out,
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m trainer.api", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="pre-train, train the baseline, evaluate, write the model card")
    t.add_argument("--config", required=True, type=Path)
    t.add_argument("--snapshot", required=True, type=Path)
    t.add_argument("--out", required=True, type=Path)
    t.add_argument("--no-resume", action="store_true", help="ignore existing checkpoints in --out")
    t.add_argument("--previous", type=Path, help="encoder.pt of the previous model version")
    t.add_argument("--progress", type=Path, help="append JSON lines here instead of stdout")
    e = sub.add_parser("evaluate", help="evaluate encoders side by side")
    e.add_argument("--snapshot", required=True, type=Path)
    e.add_argument("--encoder", action="append", required=True, metavar="NAME=PATH")
    e.add_argument("--config", type=Path)
    e.add_argument("--out", type=Path, help="write metrics JSON here (else stdout)")
    x = sub.add_parser(
        "export", help="export an encoder to one or more formats (repeat --format/--out in pairs)"
    )
    x.add_argument("--checkpoint", required=True, type=Path)
    x.add_argument("--format", required=True, action="append", choices=[*FORMATS, "card", "card-md"])
    x.add_argument("--out", required=True, action="append", type=Path)
    v = sub.add_parser("check-config", help="validate a config file")
    v.add_argument("--config", required=True, type=Path)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """CLI; returns 0 on success, 2 for invalid config/snapshot/arguments, 1 for other failures."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
    try:
        if args.command == "check-config":
            TrainConfig.from_file(args.config)
            return 0
        if args.command == "train":
            request = train_request(args)
            config = TrainConfig.from_file(request.config)
            sink = (
                JsonLinesCallback(path=request.progress)
                if request.progress
                else JsonLinesCallback(sys.stdout)
            )
            is_main = not distributed.launched_by_torchrun() or int(os.environ.get("RANK", "0")) == 0
            train(
                config,
                request.snapshot,
                request.out,
                callbacks=sink if is_main else None,
                resume=request.resume,
                previous=request.previous,
            )
            sink.close()
            distributed.cleanup()
            return EXIT_OK
        if args.command == "evaluate":
            ev = evaluate_request(args)
            cfg = TrainConfig.from_file(ev.config) if ev.config else None
            metrics = evaluate({name: str(path) for name, path in ev.encoders.items()}, ev.snapshot, cfg)
            text = json.dumps(metrics, indent=2, sort_keys=True)
            if ev.out:
                ev.out.write_text(text, encoding="utf-8")
            else:
                sys.stdout.write(text + "\n")
            return EXIT_OK
        if args.command == "export":
            return _export_cli(args.checkpoint, args.format, args.out)
    except (ConfigError, SnapshotError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_INVALID
    return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
