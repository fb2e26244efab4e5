"""Benchmark: gaze positive mask for a batch against the MoCo queue (``mcgip bench mask``).

References, run in this process on the same inputs, both Python double loops over a thresholded
N x N similarity matrix:

* paper-style: the loop the way the paper's MoCo+McGIP code builds its label buffer every step
  (``.item()`` per queue entry, NumPy similarity lookup, element writes into a torch mask);
* plain: the same loop over Python int lists into a numpy mask
  (``trainer.losses.mask.reference_positive_mask``, the tests' reference), a faster loop.

Measured: ``PairLookup.lookup`` (dense adjacency and sorted-key variants) on CPU with
``--threads`` torch threads (default 1: the loops are single-threaded too, and on a busy machine a
multi-threaded parallel region of a 100 us op can stall for a scheduler quantum), and on CUDA when
present. Prints the speed-up ratios and checks every mask is identical.
Target: >= 1,000x over the paper-style loop at batch 32, queue 4,096 (dense, CPU).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from functools import partial

import numpy as np
import torch

from trainer.losses.mask import PairLookup, reference_positive_mask


def similarity_matrix(n: int, positives_per_case: float, seed: int) -> tuple[np.ndarray, torch.Tensor]:
    """Symmetric similarities in [0, 1) with unit diagonal; ~``positives_per_case`` pairs >= 0.9 per row.

    Returns:
        (N, N) float32 matrix and the (E, 2) edges passing threshold 0.9.
    """
    rng = np.random.default_rng(seed)
    sim = (rng.random((n, n), dtype=np.float32) * 0.89).astype(np.float32)
    hits = rng.random((n, n)) < positives_per_case / n / 2
    sim[hits] = 0.95
    sim = np.maximum(sim, sim.T)
    np.fill_diagonal(sim, 1.0)
    a, b = np.nonzero(np.triu(sim >= 0.9, k=1))
    return sim, torch.from_numpy(np.stack([a, b], 1)).long()


def paper_style_mask(
    sim: np.ndarray, threshold: float, idx: torch.Tensor, queue_idx: torch.Tensor
) -> torch.Tensor:
    """The paper's pattern: per batch row ``int(idx[i].item())``, per queue entry
    ``int(queue_idx[j].item())`` and a NumPy lookup, positives written one by one into a torch mask
    (same semantics as ours: empty slots are -1, no position-based skip)."""
    mask = torch.zeros(idx.shape[0], queue_idx.shape[0], dtype=torch.long)
    for i in range(idx.shape[0]):
        a = int(idx[i].item())
        for j in range(queue_idx.shape[0]):
            b = int(queue_idx[j].item())
            if b >= 0 and sim[a][b] >= threshold:
                mask[i][j] = 1
    return mask


def _median_time(fn: Callable[[], object], repeat: int, sync: Callable[[], None]) -> float:
    times = []
    for _ in range(repeat):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mcgip bench mask", description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=5000, help="N cases in the pair graph")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--queue", type=int, default=4096)
    parser.add_argument("--positives", type=float, default=20.0, help="mean gaze partners per case")
    parser.add_argument("--repeat", type=int, default=200, help="timed repetitions of the tensor lookups")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads for the tensor lookups")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    sim, edges = similarity_matrix(args.cases, args.positives, args.seed)
    rng = np.random.default_rng(args.seed + 1)
    rows = rng.integers(0, args.cases, args.batch)
    cols = rng.integers(0, args.cases, args.queue)
    cols[: args.queue // 8] = -1  # a partly filled queue
    plain_s, paper_s = float("inf"), float("inf")
    for _ in range(2):
        t0 = time.perf_counter()
        ref = reference_positive_mask(sim, 0.9, rows.tolist(), cols.tolist())
        plain_s = min(plain_s, time.perf_counter() - t0)
        t0 = time.perf_counter()
        paper = paper_style_mask(sim, 0.9, torch.from_numpy(rows), torch.from_numpy(cols))
        paper_s = min(paper_s, time.perf_counter() - t0)
    ok = bool(np.array_equal(paper.bool().numpy(), ref))

    print(
        f"positive mask: batch {args.batch} x queue {args.queue}, {args.cases} cases, {len(edges)} pairs, "
        f"{args.threads} CPU thread(s)"
    )
    print(f"  paper-style loop (.item() per entry)  {paper_s * 1e3:10.3f} ms   1x")
    print(f"  plain loop (int lists, numpy)         {plain_s * 1e3:10.3f} ms   {paper_s / plain_s:,.1f}x")
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    dense_cpu_ratio = 0.0
    for device in devices:
        sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
        r, c = torch.from_numpy(rows).to(device), torch.from_numpy(cols).to(device)
        for name, limit in (("dense", args.cases), ("sorted-key", 0)):
            lookup = PairLookup(edges, args.cases, dense_limit=limit, device=device)
            got = lookup.lookup(r, c)
            same = bool(np.array_equal(got.cpu().numpy(), ref))
            ok &= same
            t = _median_time(partial(lookup.lookup, r, c), args.repeat, sync)
            ratio = paper_s / t
            if device.type == "cpu" and name == "dense":
                dense_cpu_ratio = ratio
            print(
                f"  {name:<10} {device.type:<4} (tensor ops)         {t * 1e3:10.4f} ms   {ratio:,.0f}x"
                f"   ({plain_s / t:,.0f}x the plain loop)   identical={same}"
            )
    verdict = "PASS" if ok and dense_cpu_ratio >= 1000 else "FAIL"
    print(f"target >= 1,000x (dense, CPU) with identical masks: {verdict} ({dense_cpu_ratio:,.0f}x)")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
