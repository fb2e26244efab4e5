"""Run under ``torchrun --nproc-per-node 2``: DDP (gloo) training, then per-rank state for the test.

Usage: ddp_worker.py MANIFEST OUT_DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from trainer import api, distributed
from trainer.callbacks import Callback
from trainer.config import TrainConfig
from trainer.data.augment import resolve, train_transform
from trainer.data.dataset import TwoViewDataset
from trainer.data.snapshot import load_snapshot
from trainer.loop import TrainingLoop
from trainer.models.factory import build_method
from trainer.models.moco import MoCo
from trainer.pipeline import build_positives, prepare_data


def config(name: str) -> TrainConfig:
    return TrainConfig.from_dict(
        {
            "data": {"image_size": 32, "load_size": 36},
            "model": {"proj_hidden_dim": 64, "proj_dim": 32},
            "method": {"name": name, "queue_size": 48},
            "train": {"batch_size": 8, "steps": 3, "checkpoint_every": 3, "log_every": 1, "device": "cpu"},
            "evaluation": {"baseline": "none", "linear_probe": False},
        }
    )


def main() -> None:
    manifest, out = Path(sys.argv[1]), Path(sys.argv[2])
    info = distributed.init_from_env(torch.device("cpu"))
    snapshot = load_snapshot(manifest)
    report: dict[str, object] = {"world_size": info.world_size}
    for name in ("moco_v2", "simclr"):
        cfg = config(name)
        prepared = prepare_data(cfg, snapshot)
        torch.manual_seed(0)
        method = build_method(cfg, build_positives(cfg, prepared, torch.device("cpu")))
        dataset = TwoViewDataset(
            prepared.store, train_transform(resolve(cfg.augment), cfg.data), prepared.train_cases
        )
        loop = TrainingLoop(
            method=method,
            dataset=dataset,
            loop=cfg.train,
            optim=cfg.optim,
            run=name,
            checkpoint_dir=None,
            callbacks=Callback(),
            device=torch.device("cpu"),
        )
        loop.run()
        entry: dict[str, object] = {
            "params": [float(p.detach().double().sum()) for p in method.encoder.parameters()][:20],
            "steps": loop.state.step,
        }
        if name == "moco_v2":
            assert isinstance(method, MoCo)
            entry["queue_idx"] = method.queue_idx.tolist()
        report[name] = entry
    result = api.train(config("simclr"), manifest, out / "api")  # the worker's torchrun entry path
    report["api_steps"] = result.steps
    report["api_metrics"] = sorted(result.metrics)
    (out / f"rank{info.rank}.json").write_text(json.dumps(report))
    distributed.cleanup()


if __name__ == "__main__":
    main()
