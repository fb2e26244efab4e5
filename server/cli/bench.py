"""``mcgip bench NAME``: run one of the benchmarks under bench/."""

from __future__ import annotations

import importlib

import typer

from server.cli.app import app, fail

#: Benchmark name -> module under bench/ exposing ``main(argv) -> int``.
BENCHMARKS: dict[str, str] = {
    "ingest": "bench.ingest",
    "pairs": "bench.pairs",
    "mask": "bench.mask",
    "step": "bench.step",
    "throughput": "bench.throughput",
    "mcgip-vs-baseline": "bench.mcgip_vs_baseline",
    "loop": "bench.loop",
    "import": "bench.import_gaze",
    "ws-abuse": "bench.ws_abuse",
    "predict": "bench.predict",
    "dicomweb-import": "bench.dicomweb_import",
    "startup": "bench.startup",
    "science": "bench.science",
}


@app.command("bench", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def bench(
    ctx: typer.Context, name: str = typer.Argument(..., help=f"One of: {', '.join(BENCHMARKS)}")
) -> None:
    """Run a benchmark; extra arguments are passed to it (try ``--help`` after the name)."""
    module_name = BENCHMARKS.get(name)
    if module_name is None:
        fail(f"unknown benchmark {name!r}; choose from {', '.join(BENCHMARKS)}")
        return
    module = importlib.import_module(module_name)
    raise typer.Exit(int(module.main(list(ctx.args))))
