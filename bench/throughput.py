"""Benchmark: McGIP training throughput vs a plain torchvision ResNet-50 step (``mcgip bench throughput``).

One run builds McGIP (MoCo v2 with gaze positives over ``--cases`` cases, ResNet-50, the GPU
config's 224 px, AMP bf16 on CUDA, channels-last) and a plain supervised torchvision ResNet-50
(cross-entropy, SGD, same AMP and memory format) and steps them on the same batch, interleaved
(A B, B A, ...) so drift in machine load hits both equally. Reported: the median of the paired
throughput ratios (cases per second, McGIP / plain) on the same batch of cases, the target being
>= 0.90, and for reading it the ratio against a plain step on every view McGIP encodes (2x the
batch). Runs on CPU at any size (``--image-size 32 --batch 2`` for a smoke run).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence

import torch
import torchvision

from bench.step import make_step, random_edges
from trainer.config import TrainConfig
from trainer.losses.mask import PairLookup
from trainer.losses.positives import GazePositives
from trainer.models.factory import build_method

TARGET = 0.90


def plain_step(device: torch.device, amp: bool, channels_last: bool) -> Callable[[torch.Tensor], float]:
    """A supervised torchvision ResNet-50 step (forward, cross-entropy, backward, SGD) on a batch."""
    model = torchvision.models.resnet50(num_classes=2).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step(images: torch.Tensor) -> float:
        targets = torch.zeros(images.shape[0], dtype=torch.long, device=images.device)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
            loss = torch.nn.functional.cross_entropy(model(images), targets)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return float(loss.detach())

    return step


def measure(args: argparse.Namespace, device: torch.device) -> dict[str, float]:
    """Median step seconds of McGIP and the plain steps, and the median paired ratios."""
    cuda = device.type == "cuda"
    cfg = TrainConfig.from_dict(
        {"model": {"backbone": args.backbone}, "method": {"name": "moco_v2", "queue_size": args.queue}}
    )
    torch.manual_seed(args.seed)
    lookup = PairLookup(random_edges(args.cases, args.positives, args.seed), args.cases, device=device)
    method = build_method(cfg, GazePositives(lookup, seed=args.seed, device=device)).to(device)
    if cuda:
        method.to(memory_format=torch.channels_last)
    mcgip = make_step(method, device, amp=cuda)
    plain = plain_step(device, amp=cuda, channels_last=cuda)
    g = torch.Generator().manual_seed(args.seed)
    size, b = args.image_size, args.batch
    fmt = torch.channels_last if cuda else torch.contiguous_format
    v1 = torch.randn(b, 1, size, size, generator=g).to(device)
    v2 = torch.randn(b, 1, size, size, generator=g).to(device)
    idx = torch.randint(0, args.cases, (b,), generator=g).to(device)
    # The plain network takes RGB: the same grey pixels on three channels (copied once, not timed).
    rgb1 = v1.expand(-1, 3, -1, -1).contiguous(memory_format=fmt)
    both = torch.cat([v1, v2]).expand(-1, 3, -1, -1).contiguous(memory_format=fmt)
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    runs: dict[str, Callable[[int], float]] = {
        "mcgip": lambda k: mcgip(v1, v2, idx, k),
        "plain": lambda k: plain(rgb1),
        "plain_views": lambda k: plain(both),
    }

    def timed(name: str, k: int) -> float:
        sync()
        t0 = time.perf_counter()
        runs[name](k)
        sync()
        return time.perf_counter() - t0

    for k in range(args.warmup):
        for name in runs:
            timed(name, k)
    times: dict[str, list[float]] = {name: [] for name in runs}
    same, views = [], []
    for k in range(args.trials):
        order = list(runs) if k % 2 == 0 else list(reversed(runs))
        t = {name: timed(name, k) for name in order}
        for name in runs:
            times[name].append(t[name])
        same.append(t["plain"] / t["mcgip"])  # throughput ratio = inverse time ratio
        views.append(t["plain_views"] / t["mcgip"])
    out = {name: statistics.median(v) for name, v in times.items()}
    out |= {"ratio": statistics.median(same), "ratio_views": statistics.median(views)}
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mcgip bench throughput", description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="resnet50", choices=["resnet18", "resnet50"])
    parser.add_argument(
        "--image-size", type=int, default=224, help="224: trainer/configs/gpu_resnet50_moco.json"
    )
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--queue", type=int, default=16384)
    parser.add_argument("--cases", type=int, default=5000)
    parser.add_argument("--positives", type=float, default=20.0)
    parser.add_argument("--trials", type=int, default=20, help="timed steps per model")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--quick", action="store_true", help="CPU-sized run: 64 px, batch 4, 4 trials")
    args = parser.parse_args(argv)
    if args.quick:
        args.image_size, args.batch, args.trials, args.warmup, args.queue = 64, 4, 4, 1, 256
    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device")
        return 1
    device = torch.device("cuda" if args.device != "cpu" and torch.cuda.is_available() else "cpu")
    label = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU x{torch.get_num_threads()}"
    print(
        f"training throughput, {label}, {args.image_size}px batch {args.batch}, AMP {device.type == 'cuda'}; "
        f"McGIP = MoCo v2 {args.backbone} + gaze positives ({args.cases} cases x ~{args.positives:g}, "
        f"queue {args.queue}); reference = plain torchvision ResNet-50 supervised step, same run"
    )
    r = measure(args, device)
    b = args.batch
    print(f"  McGIP                 {r['mcgip'] * 1e3:9.1f} ms/step  {b / r['mcgip']:9.1f} cases/s")
    print(f"  plain ResNet-50 (B)   {r['plain'] * 1e3:9.1f} ms/step  {b / r['plain']:9.1f} cases/s")
    views = r["plain_views"]
    print(f"  plain ResNet-50 (2B)  {views * 1e3:9.1f} ms/step  {2 * b / views:9.1f} images/s")
    verdict = "PASS" if r["ratio"] >= TARGET else "FAIL"
    print(
        f"target McGIP throughput >= {TARGET:.2f}x plain ResNet-50 on the same batch: {verdict} "
        f"({r['ratio']:.3f}x; against a plain step on both views: {r['ratio_views']:.3f}x)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
