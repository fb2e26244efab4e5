"""A tiny end-to-end train through the CLI: progress lines, files, metrics side by side, learning."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.trainer.fixtures import CLASSES, build_snapshot
from trainer import api

REPO = Path(__file__).resolve().parents[2]
PROGRESS_KEYS = {
    "step",
    "epoch",
    "loss",
    "lr",
    "positives_per_step",
    "images_per_s",
    "eta_s",
    "run",
    "total_steps",
}


def test_cli_train_learns_and_reports(tmp_path: Path) -> None:
    _, manifest = build_snapshot(tmp_path / "data", 64, size=40)
    config = {
        "data": {"image_size": 32, "load_size": 40},
        "augment": {"preset": "synthetic"},
        "model": {"proj_hidden_dim": 128, "proj_dim": 64},
        "method": {"name": "simclr", "temperature": 0.5},
        "optim": {"lr": 0.1, "warmup_steps": 2},
        "train": {"batch_size": 16, "steps": 24, "checkpoint_every": 12, "log_every": 4},
        "evaluation": {"knn_k": 5, "probe_epochs": 50},
    }
    (tmp_path / "cfg.json").write_text(json.dumps(config))
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        "-m",
        "trainer.api",
        "train",
        "--config",
        str(tmp_path / "cfg.json"),
        "--snapshot",
        str(manifest),
        "--out",
        str(out),
    ]
    done = subprocess.run(
        cmd,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    events = [json.loads(line) for line in done.stdout.splitlines()]
    progress = [e for e in events if e["event"] == "progress"]
    assert {e["run"] for e in progress} == {"mcgip", "baseline"}
    assert all(e.keys() >= PROGRESS_KEYS for e in progress)
    mcgip = [e for e in progress if e["run"] == "mcgip"]
    # log_every 4, but a 24-step run reports every step: at least 20 points on its curves.
    assert [e["step"] for e in mcgip] == list(range(1, 25))
    assert all(e["positives_per_step"] > 0 for e in mcgip)
    assert all(e["positives_per_step"] == 0 for e in progress if e["run"] == "baseline")
    assert events[-1]["event"] == "done"

    # Learning: the loss falls and kNN on the held-out split beats chance.
    losses = json.loads(
        json.dumps(__import__("torch").load(out / "mcgip" / "encoder.pt", weights_only=False)["losses"])
    )
    assert sum(losses[-6:]) / 6 < sum(losses[:6]) / 6
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["mcgip"]["knn"]["accuracy"] > 1 / len(CLASSES) + 0.15
    assert set(metrics["side_by_side"]["knn.accuracy"]) == {"mcgip", "baseline"}
    assert set(metrics["mcgip"]["knn"]["per_class_recall"]) == set(CLASSES)
    assert "linear" in metrics["baseline"]
    # Cross-validated evaluation: every condition on the same 5 folds of all 64 labelled cases.
    ev = metrics["evaluation"]
    assert ev["status"] == "ok" and ev["n_cases"] == 64 and ev["n_folds"] == 5
    assert set(ev["conditions"]) == {"mcgip", "baseline", "untrained"}
    assert set(ev["differences"]["mcgip"]["knn.accuracy"]) == {"value", "ci_low", "ci_high", "p_value"}
    assert ev["verdict"] in {"better", "worse", "cannot tell"}

    card = json.loads((out / "model_card.json").read_text())
    assert card["metrics"]["side_by_side"] == metrics["side_by_side"]
    assert card["snapshot"]["counts"]["cases"] == 64 and card["gaze"]["metric"] == "moments"

    # The previous model version is evaluated side by side through the same API.
    again = api.evaluate(
        {"mcgip": out / "mcgip" / "encoder.pt", "previous": out / "baseline" / "encoder.pt"}, manifest
    )
    assert set(again["side_by_side"]["knn.accuracy"]) == {"mcgip", "previous"}

    # Exports via the CLI.
    exp = subprocess.run(
        [
            sys.executable,
            "-m",
            "trainer.api",
            "export",
            "--checkpoint",
            str(out / "mcgip" / "encoder.pt"),
            "--format",
            "onnx",
            "--out",
            str(tmp_path / "m.onnx"),
        ],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
    )
    assert exp.returncode == 0 and (tmp_path / "m.onnx").exists(), exp.stderr[-2000:]


def test_cli_rejects_bad_config(tmp_path: Path) -> None:
    (tmp_path / "cfg.json").write_text(json.dumps({"train": {"batch_size": 0, "epochs": 3}}))
    done = subprocess.run(
        [sys.executable, "-m", "trainer.api", "check-config", "--config", str(tmp_path / "cfg.json")],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert "train.batch_size" in done.stderr and "train.epochs: unknown key" in done.stderr
