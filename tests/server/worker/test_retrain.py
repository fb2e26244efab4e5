"""The retrain handler and worker process with a fake trainer: progress, registration, cancel, SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from server.db import Database
from server.jobs import queue
from server.jobs.kinds import RetrainSpec
from server.models import Job, JobState, ModelVersion
from server.registry.artifacts import EXPORT_FILES, sha256_file
from server.settings import Settings
from server.storage import BlobStore
from server.worker.options import WorkerOptions
from server.worker.runner import Worker
from tests.conftest import Users
from tests.server.worker.data import TinyDataset, make_dataset
from tests.server.worker.orphans import orphaned_files

FAKE = [sys.executable, str(Path(__file__).with_name("fake_trainer.py"))]
ROOT = Path(__file__).resolve().parents[3]


def tiny_config(steps: int = 12, every: int = 3, **extra: object) -> dict[str, object]:
    return {"train": {"steps": steps, "checkpoint_every": every, "log_every": 1, "device": "cpu"}, **extra}


@pytest.fixture
def data(db: Database, settings: Settings, users: Users) -> TinyDataset:
    return make_dataset(db, BlobStore(settings.blob_dir), users.reader)


def fake_options(**overrides: object) -> WorkerOptions:
    values: dict[str, object] = {
        "heartbeat_s": 0.2,
        "stale_after_s": 2.0,
        "poll_s": 0.1,
        "train_command": " ".join(FAKE),
        **overrides,
    }
    return WorkerOptions(**values)  # type: ignore[arg-type]


def load(db: Database, job_id: int) -> Job:
    with db.session() as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job


def wait_for(predicate: Callable[[], bool], timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_retrain_registers_one_version_with_checksums_and_history(
    db: Database, settings: Settings, data: TinyDataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_STEP_S", "0.01")
    job = queue.submit(db, RetrainSpec(config=tiny_config()), dataset_id=data.dataset_id)
    worker = Worker(settings, fake_options(), db=db)
    assert worker.run_once() == job.id
    done = load(db, job.id)
    assert done.state == JobState.succeeded, (done.error, done.log_tail)
    assert done.progress == 1.0
    history = done.progress_info["history"]
    assert [p[0] for p in history["mcgip"]] == list(range(1, 13)) and len(history["baseline"]) == 12
    with db.session() as session:
        versions = session.scalars(select(ModelVersion)).all()
        assert len(versions) == 1
        version = versions[0]
        assert done.result == {
            "model_version_id": version.id,
            "version": 1,
            "artifact_dir": version.artifact_dir,
        }
        assert version.job_id == job.id and version.method == "moco_v2" and version.backbone == "resnet18"
        assert version.snapshot["counts"]["cases"] == 8 and version.snapshot["counts"]["positives"] == 2
        assert version.metrics["side_by_side"]["knn.accuracy"]["mcgip"] == 0.5
        # 4 labelled cases per class: training ran, and the evaluation says what is missing.
        evaluation = version.metrics["evaluation"]
        assert evaluation["status"] == "insufficient_labels" and evaluation["verdict"] == "cannot tell"
        assert evaluation["problems"] == [
            f"class {c!r} has 4 labelled cases; 5-fold cross-validation needs at least 5 per class (1 more)"
            for c in ("a", "b")
        ]
        assert version.snapshot["labels"]["sources"] == {"readers": 8}
        folder = BlobStore(settings.blob_dir).path(version.artifact_dir)
        for name in [*EXPORT_FILES.values(), "encoder.pt", "snapshot.json", "config.json"]:
            assert version.checksums[name] == sha256_file(folder / name)
    manifest = json.loads((folder / "snapshot.json").read_text())
    labels = {c["id"]: c["label"] for c in manifest["cases"]}
    assert labels[str(data.case_ids[0])] == "a" and labels[str(data.case_ids[1])] == "b"


def test_invalid_config_fails_without_retry(db: Database, settings: Settings, data: TinyDataset) -> None:
    job = queue.submit(db, RetrainSpec(config={"name": "invalid"}), dataset_id=data.dataset_id)
    Worker(settings, fake_options(), db=db).run_once()
    failed = load(db, job.id)
    assert failed.state == JobState.failed and failed.attempts == 1
    assert "invalid training config" in failed.log_tail


def test_crashing_trainer_is_retried_with_backoff(
    db: Database, settings: Settings, data: TinyDataset
) -> None:
    job = queue.submit(db, RetrainSpec(config=tiny_config()), dataset_id=data.dataset_id)
    crash = f"{sys.executable} -c 'import sys; sys.exit(1)'"
    Worker(settings, fake_options(train_command=crash), db=db).run_once()
    again = load(db, job.id)
    assert again.state == JobState.queued and again.run_after is not None
    assert "exited with status 1" in (again.error or "")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped) counts as dead.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_cancel_kills_the_training_subprocess(
    db: Database, settings: Settings, data: TinyDataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_STEP_S", "0.5")
    job = queue.submit(db, RetrainSpec(config=tiny_config(steps=400)), dataset_id=data.dataset_id)
    worker = Worker(settings, fake_options(), db=db)
    thread = threading.Thread(target=worker.run_once)
    thread.start()
    pid_file = BlobStore(settings.blob_dir).path(f"jobs/{job.id}/out/pid")
    wait_for(lambda: load(db, job.id).progress_info.get("step", 0) >= 1, what="training progress")
    pid = int(pid_file.read_text())
    assert _pid_alive(pid)
    with db.session() as session:
        queue.request_cancel(session, session.get(Job, job.id))  # type: ignore[arg-type]
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert load(db, job.id).state == JobState.cancelled
    wait_for(lambda: not _pid_alive(pid), timeout=10, what="the trainer to exit")


def _start_worker(settings: Settings, env_extra: dict[str, str]) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "MCGIP_DATABASE_URL": settings.resolved_database_url,
        "MCGIP_DATA_DIR": str(settings.data_dir),
        "MCGIP_SECRET_KEY": settings.secret_key,
        "MCGIP_WORKER_HEARTBEAT_S": "0.2",
        "MCGIP_WORKER_STALE_AFTER_S": "2",
        "MCGIP_WORKER_POLL_S": "0.1",
        **env_extra,
    }
    return subprocess.Popen([sys.executable, "-m", "server.cli", "worker"], cwd=ROOT, env=env)


@pytest.fixture
def workers() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def sigkill_and_resume(
    db: Database,
    settings: Settings,
    job_id: int,
    env: dict[str, str],
    workers: list[subprocess.Popen[bytes]],
    *,
    kill_after_step: int,
    timeout: float,
) -> tuple[Job, list[str]]:
    """Run a worker process, SIGKILL it after a checkpoint, start another; return the job and starts."""
    workers.append(_start_worker(settings, env))
    wait_for(
        lambda: (load(db, job_id).progress_info.get("checkpoint") or {}).get("step", 0) >= kill_after_step,
        timeout=timeout,
        what="a checkpoint",
    )
    out = BlobStore(settings.blob_dir).path(f"jobs/{job_id}/out")
    trainer_pid = int((out / "pid").read_text()) if (out / "pid").exists() else None
    workers[0].send_signal(signal.SIGKILL)
    workers[0].wait(timeout=10)
    if trainer_pid is not None:  # the orphaned trainer dies with its worker (parent-death signal)
        wait_for(lambda: not _pid_alive(trainer_pid), timeout=10, what="the orphaned trainer to die")
    assert load(db, job_id).state == JobState.running  # nobody has noticed yet
    workers.append(_start_worker(settings, env))
    wait_for(lambda: load(db, job_id).state in queue.TERMINAL_STATES, timeout=timeout, what="the job to end")
    starts = (out / "starts.log").read_text().split("\n") if (out / "starts.log").exists() else []
    return load(db, job_id), [s for s in starts if s]


def test_sigkill_mid_training_resumes_from_checkpoint_and_makes_one_version(
    db: Database, settings: Settings, data: TinyDataset, workers: list[subprocess.Popen[bytes]]
) -> None:
    config = tiny_config(steps=40, every=4, evaluation={"baseline": "none"})
    job = queue.submit(db, RetrainSpec(config=config), dataset_id=data.dataset_id)
    env = {"MCGIP_WORKER_TRAIN_COMMAND": " ".join(FAKE), "FAKE_STEP_S": "0.1"}
    final, starts = sigkill_and_resume(db, settings, job.id, env, workers, kill_after_step=8, timeout=60)
    assert final.state == JobState.succeeded, (final.error, final.log_tail[-2000:])
    assert final.attempts == 2
    first, second = (int(line.split()[1]) for line in starts)
    assert first == 0 and second >= 8 and second % 4 == 0  # resumed at a checkpoint, not from scratch
    assert final.progress_info["resumed_from"] == {"mcgip": second}
    with db.session() as session:
        versions = session.scalars(
            select(ModelVersion).where(ModelVersion.dataset_id == data.dataset_id)
        ).all()
    assert [v.job_id for v in versions] == [job.id]
    assert orphaned_files(db, settings.blob_dir) == []


REAL_TINY = {
    "data": {"image_size": 32, "num_workers": 0},
    "model": {"backbone": "resnet18", "proj_hidden_dim": 16, "proj_dim": 8, "pred_hidden_dim": 8},
    "method": {"name": "moco_v2", "queue_size": 8},
    "train": {
        "steps": 16,
        "batch_size": 4,
        "checkpoint_every": 2,
        "log_every": 1,
        "device": "cpu",
        "amp": False,
    },
    "evaluation": {"baseline": "none", "probe_epochs": 3, "knn_k": 3},
}


@pytest.mark.slow
def test_sigkill_with_the_real_trainer_resumes_and_exports(
    db: Database, settings: Settings, data: TinyDataset, workers: list[subprocess.Popen[bytes]], backend: str
) -> None:
    if backend != "sqlite":
        pytest.skip(
            "one backend is enough for the torch run; claims on PostgreSQL are tested with the fake trainer"
        )
    job = queue.submit(db, RetrainSpec(config=REAL_TINY), dataset_id=data.dataset_id)
    env = {"OMP_NUM_THREADS": "1"}
    final, _ = sigkill_and_resume(db, settings, job.id, env, workers, kill_after_step=4, timeout=240)
    assert final.state == JobState.succeeded, (final.error, final.log_tail[-3000:])
    assert final.attempts == 2
    resumed = final.progress_info["resumed_from"]["mcgip"]
    assert resumed >= 4
    # The trainer's own loss curve continues from the checkpoint: no step before it was repeated.
    steps = [int(p[0]) for p in final.progress_info["history"]["mcgip"]]
    assert steps == sorted(set(steps)) and steps[-1] == 16
    with db.session() as session:
        versions = session.scalars(select(ModelVersion).where(ModelVersion.job_id == job.id)).all()
    assert len(versions) == 1
    folder = BlobStore(settings.blob_dir).path(versions[0].artifact_dir)
    for fmt in ("torchscript", "safetensors"):
        assert versions[0].checksums[EXPORT_FILES[fmt]] == sha256_file(folder / EXPORT_FILES[fmt])
    assert orphaned_files(db, settings.blob_dir) == []


def test_failed_export_keeps_the_trained_version(
    db: Database, settings: Settings, data: TinyDataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A trainer whose ONNX export fails: training output is kept, the version lists the other exports.
    monkeypatch.setenv("FAKE_FAIL_EXPORT", "onnx")
    job = queue.submit(db, RetrainSpec(config=tiny_config(steps=3)), dataset_id=data.dataset_id)
    Worker(settings, fake_options(), db=db).run_once()
    done = load(db, job.id)
    assert done.state == JobState.succeeded
    assert set(done.result["export_errors"]) == {"onnx"}  # type: ignore[index]
    with db.session() as session:
        version = session.scalars(select(ModelVersion)).one()
    assert EXPORT_FILES["onnx"] not in version.checksums and EXPORT_FILES["safetensors"] in version.checksums
