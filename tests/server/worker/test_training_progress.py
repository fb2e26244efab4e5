"""Job progress, time left and curves from recorded trainer lines (``trainer.contract`` events)."""

from __future__ import annotations

from typing import Any

import pytest

from server.worker.training import ProgressTracker
from trainer.contract import DoneEvent, EvaluateEvent, ProgressEvent, RunEnd, RunStart


class RecordingContext:
    """The reporting half of ``JobContext``: what the heartbeat would write, after every line."""

    def __init__(self) -> None:
        self.progress = 0.0
        self._info: dict[str, Any] = {}
        self.states: list[tuple[float, dict[str, Any]]] = []
        self.lines: list[str] = []

    def report(self, progress: float | None = None, **info: Any) -> None:
        if progress is not None:
            self.progress = progress
        self._info.update(info)
        self.states.append((self.progress, dict(self._info)))

    def info(self) -> dict[str, Any]:
        return dict(self._info)

    def log(self, line: str) -> None:
        self.lines.append(line)

    def append_output(self, line: str) -> None:
        self.lines.append(line)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def replay(steps: int, every: int, step_s: float) -> tuple[RecordingContext, list[float | None]]:
    """Two runs (McGIP and baseline) of ``steps`` steps at ``step_s`` s each, logged every ``every``,
    as the trainer writes them; returns the context and the ETA after each progress line."""
    ctx, clock = RecordingContext(), Clock()
    tracker = ProgressTracker(ctx, ["mcgip", "baseline"], clock=clock)  # type: ignore[arg-type]
    etas: list[float | None] = []
    for run in ("mcgip", "baseline"):
        clock.now += 3.0  # start-up between runs: not a training step
        tracker.handle(RunStart(run=run, total_steps=steps).line())
        for step in range(1, steps + 1):
            clock.now += step_s
            if step % every and step != steps:
                continue
            line = ProgressEvent(
                run=run,
                step=step,
                total_steps=steps,
                loss=1.0 / step,
                lr=0.1 * (1 - step / steps),
                eta_s=(steps - step) * step_s,  # the trainer's own: this run only
            )
            tracker.handle(line.line())
            etas.append(ctx.info()["eta_s"])
        tracker.handle(RunEnd(run=run).line())
    tracker.handle(EvaluateEvent(models=["baseline", "mcgip"]).line())
    assert ctx.info()["eta_s"] is None  # evaluation: no step count to extrapolate from
    tracker.handle("some log text from the trainer\n")
    metrics = {"knn.accuracy": {"mcgip": 0.75, "baseline": 0.5}, "linear.accuracy": {"mcgip": 0.7}}
    tracker.handle(DoneEvent(encoder="mcgip/encoder.pt", metrics=metrics).line())
    return ctx, etas


@pytest.mark.parametrize(("steps", "every", "step_s"), [(3, 1, 0.5), (400, 10, 2.0)])
def test_time_left_covers_every_run_and_falls_to_zero(steps: int, every: int, step_s: float) -> None:
    ctx, etas = replay(steps, every, step_s)
    per_run = len(etas) // 2
    mcgip, baseline = etas[:per_run], etas[per_run:]
    # A run's first line starts its clock; from the second on the estimate is exact here.
    assert mcgip[0] is None and baseline[0] is None
    logged = [s for s in range(1, steps + 1) if s % every == 0 or s == steps]
    for step, eta in zip(logged[1:], mcgip[1:], strict=True):
        # This run's steps left and all of the baseline's, not just the run in progress.
        assert eta == pytest.approx(((steps - step) + steps) * step_s)
    for step, eta in zip(logged[1:], baseline[1:], strict=True):
        assert eta == pytest.approx((steps - step) * step_s)
    assert baseline[-1] == 0.0
    fractions = [p for p, _ in ctx.states]
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(0.9)


def test_curves_and_evaluation_points() -> None:
    ctx, _ = replay(5, 10, 0.1)  # log_every past the run's length: only the last step is logged
    info = ctx.info()
    assert [p[0] for p in info["history"]["mcgip"]] == [5.0]
    assert info["history"]["baseline"][-1] == [5.0, pytest.approx(0.2), 0.0]
    assert info["evaluations"] == [
        {"metric": "knn.accuracy", "run": "baseline", "step": 5.0, "value": 0.5},
        {"metric": "knn.accuracy", "run": "mcgip", "step": 5.0, "value": 0.75},
        {"metric": "linear.accuracy", "run": "mcgip", "step": 5.0, "value": 0.7},
    ]
    assert ctx.lines[-1] == "some log text from the trainer"
