"""A bounded thread pool for model inference: the event loop hands work over and never waits on it.

``PredictPool.run`` is awaited by async route handlers. At most ``workers`` jobs run at once (each an
onnxruntime call, which releases the GIL) and at most ``capacity`` are admitted in total (running or
queued); beyond that ``PoolFull`` (a domain ``Unavailable``: 503 with Retry-After) is raised
immediately instead of building an unbounded backlog.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from server.exceptions import Unavailable
from server.registry.priority import lower_current_thread

T = TypeVar("T")


class PoolFull(Unavailable):
    """Every slot of the pool is taken; ``retry_after_s`` is a hint for the client."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__("the prediction queue is full; retry shortly", retry_after_s=retry_after_s)


class PredictPool:
    """``workers`` threads, ``capacity`` admitted jobs (running + waiting) at most."""

    def __init__(self, workers: int = 2, capacity: int = 32, nice: int = 0) -> None:
        if workers < 1 or capacity < workers:
            raise ValueError(f"need workers >= 1 and capacity >= workers (got {workers}, {capacity})")
        self.workers = workers
        self.capacity = capacity
        #: Added to each worker thread's nice value (Linux): ingest and the event loop come first.
        self.nice = nice
        self._executor: ThreadPoolExecutor | None = None
        self._slots = threading.BoundedSemaphore(capacity)
        self._lock = threading.Lock()
        self._admitted = 0

    @property
    def admitted(self) -> int:
        """Jobs running or waiting now."""
        return self._admitted

    def _pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    self.workers,
                    thread_name_prefix="predict",
                    initializer=lower_current_thread,
                    initargs=(self.nice,),
                )
            return self._executor

    async def run(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` in the pool and await its result; raises ``PoolFull`` when no slot is free."""
        if not self._slots.acquire(blocking=False):
            # Roughly how long the queue ahead needs to drain, at least a second.
            raise PoolFull(retry_after_s=max(1, self.capacity // max(1, self.workers) // 4))
        with self._lock:
            self._admitted += 1

        def job() -> T:
            try:
                return fn()
            finally:
                with self._lock:
                    self._admitted -= 1
                self._slots.release()

        try:
            future = self._pool().submit(job)
        except BaseException:
            with self._lock:
                self._admitted -= 1
            self._slots.release()
            raise
        return await asyncio.wrap_future(future)

    def shutdown(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
