"""Training loop: schedule, accumulation, checkpoints and exact resume (in-process crash and SIGKILL)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.trainer.fixtures import build_snapshot
from trainer.callbacks import Callback, CallbackList, Progress
from trainer.checkpoint import list_checkpoints
from trainer.config import TrainConfig
from trainer.data.snapshot import load_snapshot
from trainer.loop import LoopResult
from trainer.pipeline import prepare_data, train_one
from trainer.schedule import warmup_cosine_factor

REPO = Path(__file__).resolve().parents[2]


def tiny_config(**overrides: dict) -> TrainConfig:
    base: dict = {
        "data": {"image_size": 32, "load_size": 36},
        "augment": {"preset": "synthetic"},
        "model": {"proj_hidden_dim": 64, "proj_dim": 32, "pred_hidden_dim": 32},
        "method": {"name": "moco_v2", "queue_size": 40},
        "gaze": {"drop_prob": 0.3},
        "optim": {"warmup_steps": 2},
        "train": {"batch_size": 8, "steps": 6, "grad_accum": 2, "checkpoint_every": 2, "log_every": 1},
        "evaluation": {"baseline": "none", "linear_probe": False},
    }
    for key, value in overrides.items():
        base[key] = {**base.get(key, {}), **value}
    return TrainConfig.from_dict(base)


def test_warmup_cosine_factor() -> None:
    f = [warmup_cosine_factor(s, total=10, warmup=2, min_ratio=0.1) for s in range(10)]
    assert f[0] == pytest.approx(0.5) and f[1] == pytest.approx(1.0)
    assert f[2] == pytest.approx(1.0) and all(a >= b for a, b in zip(f[2:], f[3:], strict=False))
    assert warmup_cosine_factor(10, total=10, warmup=2, min_ratio=0.1) == pytest.approx(0.1)


class _Crash(Exception):
    pass


class _CrashAt(Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_checkpoint(self, run: str, step: int, path: Path) -> None:
        if step == self.step:
            raise _Crash


class _CountSteps(Callback):
    def __init__(self) -> None:
        self.steps: list[int] = []

    def on_progress(self, progress: Progress) -> None:
        self.steps.append(progress.step)


def _train(
    cfg: TrainConfig, manifest: Path, out: Path, callbacks: list[Callback] | None = None, resume: bool = True
) -> tuple[LoopResult, Path]:
    """The McGIP run of ``api.train`` (same folders), without the evaluation these tests do not read."""
    prepared = prepare_data(cfg, load_snapshot(manifest))
    return train_one(
        cfg,
        prepared,
        out / "mcgip",
        run="mcgip",
        callbacks=CallbackList(callbacks or []),
        device=torch.device("cpu"),
        resume=resume,
    )


def _encoder_state(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=False)["state_dict"]


def _assert_same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.mark.parametrize("method", ["moco_v2", "byol"])
def test_resume_after_crash_is_bit_exact(tmp_path: Path, method: str) -> None:
    _, manifest = build_snapshot(tmp_path / "data", 48, size=36)
    cfg = tiny_config(method={"name": method})
    straight, straight_encoder = _train(cfg, manifest, tmp_path / "straight")
    with pytest.raises(_Crash):
        _train(cfg, manifest, tmp_path / "crashed", callbacks=[_CrashAt(4)])
    ckpts = list_checkpoints(tmp_path / "crashed" / "mcgip" / "checkpoints")
    assert [p.name for p in ckpts] == ["step-00000002.pt", "step-00000004.pt"]
    resumed, resumed_encoder = _train(cfg, manifest, tmp_path / "crashed")
    assert resumed.steps == straight.steps == 6
    assert resumed.losses == straight.losses  # loss history restored and continued identically
    _assert_same_state(_encoder_state(straight_encoder), _encoder_state(resumed_encoder))
    # Checkpoint rotation keeps only the newest two.
    assert len(list_checkpoints(tmp_path / "crashed" / "mcgip" / "checkpoints")) == 2


def test_no_resume_starts_over(tmp_path: Path) -> None:
    _, manifest = build_snapshot(tmp_path / "data", 48, size=36)
    cfg = tiny_config(train={"steps": 3}, optim={"warmup_steps": 0})
    first, _ = _train(cfg, manifest, tmp_path / "out")
    counter = _CountSteps()
    again, _ = _train(cfg, manifest, tmp_path / "out", callbacks=[counter], resume=True)
    assert counter.steps == [] and again.losses == first.losses  # complete: nothing retrained
    over, _ = _train(cfg, manifest, tmp_path / "out", callbacks=[counter], resume=False)
    assert counter.steps == [1, 2, 3] and over.losses == first.losses  # retrained, deterministically


def test_sigkill_then_resume_matches_uninterrupted_run(tmp_path: Path) -> None:
    _, manifest = build_snapshot(tmp_path / "data", 48, size=36)
    cfg = tiny_config(train={"steps": 12, "checkpoint_every": 2, "grad_accum": 1})
    cfg_path = tmp_path / "cfg.json"
    cfg_path.write_text(json.dumps(cfg.to_dict()))
    out = tmp_path / "killed"
    cmd = [
        sys.executable,
        "-m",
        "trainer.api",
        "train",
        "--config",
        str(cfg_path),
        "--snapshot",
        str(manifest),
        "--out",
        str(out),
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt_dir = out / "mcgip" / "checkpoints"
    deadline = time.monotonic() + 120
    while not list_checkpoints(ckpt_dir) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    steps_done = [int(p.stem.split("-")[1]) for p in list_checkpoints(ckpt_dir)]
    assert steps_done and max(steps_done) < 12
    assert not (out / "mcgip" / "encoder.pt").exists()
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    _, straight_encoder = _train(cfg, manifest, tmp_path / "straight")
    _assert_same_state(_encoder_state(straight_encoder), _encoder_state(out / "mcgip" / "encoder.pt"))
