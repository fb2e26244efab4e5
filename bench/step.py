"""Benchmark: cost of gaze positives in a training step (``mcgip bench step``).

For each method, two models built from the same seed are stepped on the same inputs: McGIP (gaze
pair graph over ``--cases`` cases, ~``--positives`` partners per case, MoCo queue ``--queue``) and
the same method without gaze (the reference, measured in this run). Steps are interleaved
(A B, B A, ...) so drift in machine load hits both equally; the overhead is the median of the
paired ratios. Target: McGIP costs <= 3% more (ResNet-18, 64 px, batch 32, CPU; CUDA when present).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch

from trainer.config import TrainConfig
from trainer.losses.mask import PairLookup
from trainer.losses.positives import GazePositives
from trainer.models.base import ContrastiveMethod
from trainer.models.factory import build_method

METHODS = ("moco_v2", "byol", "simsiam", "simclr")


def random_edges(n: int, per_case: float, seed: int) -> torch.Tensor:
    """(E, 2) random pairs, about ``per_case`` partners per case."""
    g = torch.Generator().manual_seed(seed)
    e = int(n * per_case / 2)
    return torch.randint(0, n, (e, 2), generator=g)


def make_step(
    method: ContrastiveMethod, device: torch.device, amp: bool
) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor, int], float]:
    """A full optimizer step (forward, backward, SGD, momentum update) returning its loss."""
    opt = torch.optim.SGD([p for p in method.parameters() if p.requires_grad], lr=0.01, momentum=0.9)

    def step(v1: torch.Tensor, v2: torch.Tensor, idx: torch.Tensor, k: int) -> float:
        method.before_step(k, 0)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
            loss, _ = method(v1, v2, idx)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        method.after_step(0.5)
        return float(loss.detach())

    return step


def bench_method(name: str, args: argparse.Namespace, device: torch.device) -> tuple[float, float, float]:
    """Median step seconds (gaze, baseline) and the median paired overhead ratio."""
    cfg = TrainConfig.from_dict(
        {"model": {"backbone": args.backbone}, "method": {"name": name, "queue_size": args.queue}}
    )
    edges = random_edges(args.cases, args.positives, args.seed)
    models = {}
    for variant in ("gaze", "base"):
        torch.manual_seed(args.seed)
        lookup = PairLookup(edges, args.cases, device=device) if variant == "gaze" else None
        method = build_method(cfg, GazePositives(lookup, seed=args.seed, device=device)).to(device)
        if device.type == "cuda":
            method.to(memory_format=torch.channels_last)
        models[variant] = make_step(method, device, amp=device.type == "cuda")
    g = torch.Generator().manual_seed(args.seed)
    size = args.image_size
    batches = []
    for _ in range(4):
        v1 = torch.randn(args.batch, 1, size, size, generator=g).to(device)
        v2 = torch.randn(args.batch, 1, size, size, generator=g).to(device)
        idx = torch.randint(0, args.cases, (args.batch,), generator=g).to(device)
        batches.append((v1, v2, idx))
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def timed(variant: str, k: int) -> float:
        v1, v2, idx = batches[k % len(batches)]
        sync()
        t0 = time.perf_counter()
        models[variant](v1, v2, idx, k)
        sync()
        return time.perf_counter() - t0

    queue_fill = max(1, args.queue // args.batch) if name == "moco_v2" else 0
    for k in range(args.warmup + min(queue_fill, 8)):  # warm up (and fill part of the queue)
        timed("gaze", k)
        timed("base", k)
    gaze_t, base_t, ratios = [], [], []
    for k in range(args.trials):
        order = ("gaze", "base") if k % 2 == 0 else ("base", "gaze")
        t = {v: timed(v, k) for v in order}
        gaze_t.append(t["gaze"])
        base_t.append(t["base"])
        ratios.append(t["gaze"] / t["base"])
    return statistics.median(gaze_t), statistics.median(base_t), statistics.median(ratios)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mcgip bench step", description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="moco_v2", help="comma list or 'all'")
    parser.add_argument("--backbone", default="resnet18", choices=["resnet18", "resnet50"])
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--queue", type=int, default=4096)
    parser.add_argument("--cases", type=int, default=5000)
    parser.add_argument("--positives", type=float, default=20.0)
    parser.add_argument("--trials", type=int, default=10, help="timed steps per variant")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="all", choices=["all", "cpu", "cuda"])
    args = parser.parse_args(argv)
    names = METHODS if args.methods == "all" else tuple(args.methods.split(","))
    devices = []
    if args.device in ("all", "cpu"):
        devices.append(torch.device("cpu"))
    if args.device in ("all", "cuda") and torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    print(
        f"training step, {args.backbone} {args.image_size}px batch {args.batch}, queue {args.queue}, "
        f"{args.cases} cases x ~{args.positives:g} gaze partners; reference = same method without gaze"
    )
    worst = 0.0
    for device in devices:
        label = (
            torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU x{torch.get_num_threads()}"
        )
        for name in names:
            gaze_s, base_s, ratio = bench_method(name, args, device)
            worst = max(worst, ratio)
            ips = args.batch / gaze_s
            print(
                f"  {label:<24} {name:<8} no-gaze {base_s * 1e3:9.1f} ms  McGIP {gaze_s * 1e3:9.1f} ms  "
                f"overhead {100 * (ratio - 1):+6.2f}%   ({ips:,.0f} images/s)"
            )
    verdict = "PASS" if worst <= 1.03 else "FAIL"
    print(f"target McGIP step <= 1.03x no-gaze: {verdict} (worst {worst:.3f}x)")
    return 0 if np.isfinite(worst) else 1


if __name__ == "__main__":
    raise SystemExit(main())
