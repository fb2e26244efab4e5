"""A bounded pool for model inference: the event loop hands work over and never waits on it.

``PredictPool.run`` is awaited by async route handlers. At most ``workers`` jobs run at once and at
most ``capacity`` are admitted in total (running or queued); beyond that ``PoolFull`` (a domain
``Unavailable``: 503 with Retry-After) is raised immediately instead of building an unbounded backlog.

Workers are **processes** by default (``processes=True``, ``MCGIP_PREDICT_PROCESSES``). Reading,
decoding and preprocessing an image is numpy and Python work that holds the GIL part of the time; in
threads of the web process it made the event loop wait for the GIL behind low-priority threads, and
gaze acknowledgements waited with it (measured on a 2-core box). A worker process has its own GIL,
every thread in it (onnxruntime's and the BLAS library's included) runs ``nice`` levels lower, and
its BLAS library uses one thread, so the web process's event loop always gets the CPU first. Jobs
and their arguments must then be picklable (module-level functions, plain values). Processes start
lazily (the first prediction pays for it) with the ``spawn`` method, never ``fork``, because the web
process has threads. Thread workers remain for callers that pass closures (tests, tools).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import threading
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from server.exceptions import Unavailable
from server.registry.priority import lower_current_thread, lower_worker_process

T = TypeVar("T")
log = logging.getLogger(__name__)


class PoolFull(Unavailable):
    """Every slot of the pool is taken; ``retry_after_s`` is a hint for the client."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__("the prediction queue is full; retry shortly", retry_after_s=retry_after_s)


class PredictPool:
    """``workers`` threads or processes, ``capacity`` admitted jobs (running + waiting) at most.

    Args:
        workers: jobs running at once.
        capacity: jobs admitted at once (running + waiting), at least ``workers``.
        nice: added to the workers' nice value (Linux): ingest and the event loop come first.
        processes: worker processes (jobs must be picklable) instead of threads.
        intra_op_threads: onnxruntime threads per session in a worker process.
    """

    def __init__(
        self,
        workers: int = 2,
        capacity: int = 32,
        nice: int = 0,
        *,
        processes: bool = False,
        intra_op_threads: int = 1,
    ) -> None:
        if workers < 1 or capacity < workers:
            raise ValueError(f"need workers >= 1 and capacity >= workers (got {workers}, {capacity})")
        if intra_op_threads < 1:
            raise ValueError(f"intra_op_threads must be >= 1 (got {intra_op_threads})")
        self.workers = workers
        self.capacity = capacity
        self.nice = nice
        self.processes = processes
        self.intra_op_threads = intra_op_threads
        self._executor: Executor | None = None
        self._slots = threading.BoundedSemaphore(capacity)
        self._lock = threading.Lock()
        self._admitted = 0

    @property
    def admitted(self) -> int:
        """Jobs running or waiting now."""
        return self._admitted

    def _pool(self) -> Executor:
        with self._lock:
            if self._executor is None:
                if self.processes:
                    self._executor = ProcessPoolExecutor(
                        self.workers,
                        mp_context=multiprocessing.get_context("spawn"),
                        initializer=lower_worker_process,
                        initargs=(self.nice, self.intra_op_threads),
                    )
                else:
                    self._executor = ThreadPoolExecutor(
                        self.workers,
                        thread_name_prefix="predict",
                        initializer=lower_current_thread,
                        initargs=(self.nice,),
                    )
            return self._executor

    def _release(self) -> None:
        with self._lock:
            self._admitted -= 1
        self._slots.release()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in the pool, awaited; raises ``PoolFull`` when no slot is free.

        With worker processes ``fn`` and ``args`` are pickled, and so are the result and any
        exception ``fn`` raises (domain errors pickle).
        """
        if not self._slots.acquire(blocking=False):
            # Roughly how long the queue ahead needs to drain, at least a second.
            raise PoolFull(retry_after_s=max(1, self.capacity // max(1, self.workers) // 4))
        with self._lock:
            self._admitted += 1
        try:
            future = self._pool().submit(fn, *args)
        except BaseException:
            self._release()
            raise
        future.add_done_callback(lambda _: self._release())
        try:
            return await asyncio.wrap_future(future)
        except BrokenProcessPool:
            # A worker died (killed, out of memory): start fresh processes for the next job.
            log.error("a prediction worker process died; the pool restarts its workers")
            self.shutdown()
            raise Unavailable("a prediction worker stopped; retry shortly", retry_after_s=1) from None

    def shutdown(self, *, wait: bool = False) -> None:
        """Stop the workers: queued jobs are cancelled, running ones finish (awaited with ``wait``,
        which the web process uses at exit so worker processes end cleanly)."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=wait, cancel_futures=True)
