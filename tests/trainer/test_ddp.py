"""Two-process DDP smoke test on CPU with the gloo backend, launched by torchrun."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.trainer.fixtures import build_snapshot

REPO = Path(__file__).resolve().parents[2]


def test_two_process_gloo_ddp(tmp_path: Path) -> None:
    snap, manifest = build_snapshot(tmp_path / "data", 48, size=36)
    out = tmp_path / "out"
    out.mkdir()
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        str(REPO / "tests" / "trainer" / "ddp_worker.py"),
        str(manifest),
        str(out),
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-4000:]
    r0 = json.loads((out / "rank0.json").read_text())
    r1 = json.loads((out / "rank1.json").read_text())
    assert r0["world_size"] == r1["world_size"] == 2
    for name in ("moco_v2", "simclr"):
        assert r0[name]["steps"] == r1[name]["steps"] == 3
        # Gradients are all-reduced: both ranks hold the same weights after training.
        assert r0[name]["params"] == r1[name]["params"]
    # Every rank enqueues the keys of the whole global batch: identical queues holding 3 steps x 16 cases.
    q0, q1 = r0["moco_v2"]["queue_idx"], r1["moco_v2"]["queue_idx"]
    assert q0 == q1 and -1 not in q0
    assert all(len(set(q0[i : i + 16])) == 16 for i in (0, 16, 32))  # each global batch: 16 distinct cases
    # Only the main rank evaluates and writes the outputs.
    assert r0["api_metrics"] and not r1["api_metrics"]
    assert (out / "api" / "simclr" / "encoder.pt").exists() is False
    assert (out / "api" / "mcgip" / "encoder.pt").exists() and (out / "api" / "model_card.json").exists()
