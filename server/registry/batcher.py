"""Micro-batching: predictions of one model that arrive together share one onnxruntime run.

No timer and no extra thread: each caller (a ``PredictPool`` worker holding its own preprocessed
rows) queues its rows; if no run of that model is in progress it becomes the leader, takes every
queued row (up to ``max_rows``), runs the graph once and hands each caller its own slice; callers that
queued meanwhile wait, and the first of them whose rows are still pending leads the next run. A lone
request therefore runs at once, and under load the batch grows with the number of waiting requests,
which on CPU amortises the per-run overhead and keeps concurrent runs from oversubscribing the cores.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass

import numpy as np

from trainer.arrays import Float32Array

RunGraph = Callable[[Float32Array], Float32Array]


@dataclass(eq=False)
class _Entry:
    rows: Float32Array
    result: Float32Array | None = None
    error: BaseException | None = None
    done: bool = False


class MicroBatcher:
    """Combines concurrent ``run`` calls with the same key into one call of their ``graph``."""

    def __init__(self, max_rows: int = 16) -> None:
        if max_rows < 1:
            raise ValueError(f"max_rows must be >= 1 (got {max_rows})")
        self.max_rows = max_rows
        self._cond = threading.Condition()
        self._pending: dict[Hashable, list[_Entry]] = {}
        self._running: set[Hashable] = set()
        #: Sizes (rows) of the graph runs made, most recent last (a short window, for tests/metrics).
        self.recent_runs: list[int] = []

    def run(self, key: Hashable, graph: RunGraph, rows: Float32Array) -> Float32Array:
        """``graph`` applied to ``rows`` (N, ...), possibly inside a larger batch; returns (N, ...).

        ``graph`` must map a stack of rows to one output row per input row, independently per row
        (true of an inference graph), so slicing a combined run gives each caller its own answer.
        """
        entry = _Entry(rows)
        with self._cond:
            queue = self._pending.setdefault(key, [])
            queue.append(entry)
            while not entry.done:
                if key in self._running:
                    self._cond.wait()
                    continue
                self._running.add(key)
                taken = self._take(queue)
                if not queue:
                    self._pending.pop(key, None)
                self._cond.release()
                try:
                    outcome = self._run_batch(graph, taken)
                finally:
                    self._cond.acquire()
                    self._running.discard(key)
                    self._cond.notify_all()
                self._hand_out(taken, outcome)
        if entry.error is not None:
            raise entry.error
        assert entry.result is not None
        return entry.result

    def _take(self, queue: list[_Entry]) -> list[_Entry]:
        """Oldest entries first, at least one, then more while they fit in ``max_rows``."""
        taken = [queue.pop(0)]
        rows = len(taken[0].rows)
        while queue and rows + len(queue[0].rows) <= self.max_rows:
            rows += len(queue[0].rows)
            taken.append(queue.pop(0))
        return taken

    @staticmethod
    def _run_batch(graph: RunGraph, taken: list[_Entry]) -> Float32Array | BaseException:
        """The graph's output for the stacked rows, or the exception it raised (outside the lock)."""
        try:
            stacked = taken[0].rows if len(taken) == 1 else np.concatenate([e.rows for e in taken])
            out = graph(stacked)
            if len(out) != len(stacked):
                raise RuntimeError(f"the graph returned {len(out)} rows for {len(stacked)} inputs")
            return out
        except Exception as exc:  # every caller of the batch sees the failure
            return exc

    def _hand_out(self, taken: list[_Entry], outcome: Float32Array | BaseException) -> None:
        """Each caller its own slice (under the lock)."""
        if isinstance(outcome, BaseException):
            for e in taken:
                e.error, e.done = outcome, True
            return
        start = 0
        for e in taken:
            end = start + len(e.rows)
            e.result, e.done = outcome[start:end], True
            start = end
        self.recent_runs = [*self.recent_runs[-63:], len(outcome)]
