"""The ``retrain`` job: snapshot -> trainer subprocess -> exports -> one immutable model version.

Everything a run needs is kept in the job folder (``<blobs>/jobs/<id>``): ``state.json`` (the
snapshot summary and the parent model, written once), ``snapshot.json``, ``config.json`` and the
trainer's ``out/`` with its checkpoints. When the job is requeued after its worker died, the next
attempt finds them and the trainer resumes from the newest checkpoint on the same data.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from server.datasets.snapshot import build_snapshot
from server.jobs.kinds import RetrainSpec
from server.registry.artifacts import (
    CARD_FILE,
    CARD_MARKDOWN_FILE,
    CONFIG_FILE,
    ENCODER_FILE,
    EXPORT_FILES,
    HEAD_FILE,
    METRICS_FILE,
    SNAPSHOT_FILE,
    artifact_dir_for_job,
    checksums,
)
from server.registry.versions import active_version, register_version
from server.worker.context import JobContext, PermanentError
from server.worker.training import ProgressTracker, latest_checkpoint_step, planned_runs, train_command
from trainer.config import ConfigError, TrainConfig
from trainer.contract import (
    EXIT_INVALID,
    EXIT_OK,
    Exported,
    ExportRequest,
    TrainOutputs,
    TrainRequest,
    parse_event,
)

STATE_FILE = "state.json"


def validated_config(raw: dict[str, Any]) -> dict[str, Any]:
    """The job's training config, validated (unknown keys and bad values raise PermanentError)."""
    try:
        return TrainConfig.from_dict(raw).to_dict()
    except ConfigError as exc:
        raise PermanentError(str(exc)) from None


def _prepare(ctx: JobContext, dataset_id: int, metric: str | None) -> dict[str, Any]:
    """Write (first attempt) or read back (later attempts) the job's frozen inputs."""
    state_path = ctx.job_dir / STATE_FILE
    if state_path.exists():
        state: dict[str, Any] = json.loads(state_path.read_text(encoding="utf-8"))
        ctx.log(f"reusing the snapshot taken at the first attempt ({state['snapshot']['counts']})")
        return state
    with ctx.db.session() as session:
        summary = build_snapshot(session, ctx.blobs, dataset_id, ctx.job_dir / SNAPSHOT_FILE, metric=metric)
        parent = active_version(session, dataset_id)
        previous = None
        if parent is not None:
            candidate = ctx.blobs.path(f"{parent.artifact_dir}/{ENCODER_FILE}")
            previous = str(candidate) if candidate.exists() else None
    state = {"snapshot": summary, "parent_id": parent.id if parent else None, "previous_encoder": previous}
    tmp = state_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=1), encoding="utf-8")
    tmp.replace(state_path)  # last: its presence means the snapshot is complete
    ctx.log(f"snapshot: {summary['counts']}")
    return state


def export_missing(
    ctx: JobContext, encoder: Path, folder: Path, formats: list[str] | None = None
) -> dict[str, str]:
    """Write each missing export (of ``formats``, default all) into ``folder``; returns {format: error}
    for those that failed.

    All formats are exported by one trainer process (torch is imported once), each to a partial
    file that is renamed only once it is complete. A failed export does not fail the job: the trained
    encoder is kept and registered, the version lists only the exports it has, and an ``export`` job
    can re-create a missing one later.
    """
    wanted = EXPORT_FILES if formats is None else {fmt: EXPORT_FILES[fmt] for fmt in formats}
    missing = {fmt: name for fmt, name in wanted.items() if not (folder / name).exists()}
    if not missing:
        return {}
    ctx.report(0.9, phase="export", formats=sorted(missing))
    request = ExportRequest(
        checkpoint=encoder,
        targets=[(fmt, folder / f".partial-{name}") for fmt, name in missing.items()],
    )
    exported: set[str] = set()

    def on_line(line: str) -> None:
        # The trainer prints one event per format; a file on disk alone proves nothing (the ONNX
        # file is written before onnxruntime checks it).
        event = parse_event(line)
        if isinstance(event, Exported):
            exported.add(event.format)

    code = ctx.run_process(ctx.options.trainer_command(sys.executable) + request.args(), on_line=on_line)
    errors: dict[str, str] = {}
    for fmt, name in missing.items():
        partial = folder / f".partial-{name}"
        if fmt in exported and partial.exists():
            partial.replace(folder / name)
            continue
        partial.unlink(missing_ok=True)
        errors[fmt] = f"export to {fmt} failed (exit {code}); see the log tail"
        ctx.log(errors[fmt])
    return errors


def run(ctx: JobContext, spec: RetrainSpec) -> Callable[[Session], dict[str, Any]]:
    """Train on a snapshot of the job's dataset and return the registration step."""
    dataset_id = ctx.job.dataset_id
    if dataset_id is None:
        raise PermanentError("a retrain job needs a dataset_id")
    config = validated_config(spec.config)
    ctx.report(0.0, phase="snapshot")
    state = _prepare(ctx, dataset_id, spec.metric)
    if state["snapshot"]["counts"].get("cases", 0) < 2:
        raise PermanentError(f"dataset {dataset_id} has fewer than 2 cases with images; nothing to train on")
    ctx.report(snapshot=state["snapshot"]["counts"])
    config_path = ctx.job_dir / CONFIG_FILE
    config_path.write_text(json.dumps(config, indent=1), encoding="utf-8")
    out = ctx.job_dir / "out"
    runs = planned_runs(config)
    resumed = {run: step for run in runs if (step := latest_checkpoint_step(out / run)) > 0}
    if resumed:
        ctx.report(resumed_from=resumed, attempt=ctx.job.attempts)
        ctx.log(f"attempt {ctx.job.attempts}: resuming from checkpoints {resumed}")
    previous = state.get("previous_encoder")
    request = TrainRequest(
        config=config_path,
        snapshot=ctx.job_dir / SNAPSHOT_FILE,
        out=out,
        previous=Path(previous) if previous else None,
    )
    tracker = ProgressTracker(ctx, runs)
    code = ctx.run_process(
        train_command(ctx, request.args(), device=config["train"]["device"]), on_line=tracker.handle
    )
    if code == EXIT_INVALID:
        raise PermanentError("the trainer rejected the config or snapshot (see the log tail)")
    if code != EXIT_OK:
        raise RuntimeError(f"trainer exited with status {code}")
    outputs = TrainOutputs(out=out)
    encoder = outputs.encoder(runs[0])
    if not encoder.exists():
        raise RuntimeError(f"trainer finished without writing {encoder}")
    artifact_rel = artifact_dir_for_job(ctx.job.id)
    folder = ctx.blobs.path(artifact_rel)
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(encoder, folder / ENCODER_FILE)
    for name, source in (
        (HEAD_FILE, out / runs[0] / HEAD_FILE),  # before the exports: they include the head
        (CARD_FILE, outputs.model_card),
        (CARD_MARKDOWN_FILE, out / CARD_MARKDOWN_FILE),
        (METRICS_FILE, outputs.metrics),
        (CONFIG_FILE, config_path),
        (SNAPSHOT_FILE, ctx.job_dir / SNAPSHOT_FILE),
    ):
        if source.exists():
            shutil.copyfile(source, folder / name)
    export_errors = export_missing(ctx, folder / ENCODER_FILE, folder)
    metrics_path = folder / METRICS_FILE
    metrics = json.loads(metrics_path.read_text(encoding="utf-8")) if metrics_path.exists() else {}
    sums = checksums(folder)
    snapshot = {**state["snapshot"]}
    snapshot.pop("path", None)
    ctx.report(0.98, phase="register")

    def register(session: Session) -> dict[str, Any]:
        version = register_version(
            session,
            job_id=ctx.job.id,
            dataset_id=dataset_id,
            artifact_dir=artifact_rel,
            config=config,
            snapshot=snapshot,
            metrics=metrics,
            checksums=sums,
            parent_id=state.get("parent_id"),
        )
        result: dict[str, Any] = {
            "model_version_id": version.id,
            "version": version.version,
            "artifact_dir": artifact_rel,
        }
        if export_errors:
            result["export_errors"] = export_errors
        return result

    return register
