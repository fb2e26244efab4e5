"""Lower the scheduling priority of inference threads, so gaze ingest and the event loop come first.

On Linux the nice value belongs to each thread (``setpriority(PRIO_PROCESS, tid)``) and threads
inherit it from the thread that creates them; elsewhere these functions do nothing. An unprivileged
process can only raise its nice value, so this is applied to threads that exist for inference alone.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)


def lower_current_thread(nice: int) -> None:
    """Add ``nice`` (0-19) to the calling thread's nice value (Linux; a no-op elsewhere or for 0)."""
    if nice <= 0 or not sys.platform.startswith("linux"):
        return
    tid = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))
    except OSError as exc:  # a sandbox may forbid it; inference still works at normal priority
        log.warning("could not lower the priority of thread %s: %s", tid, exc)


def call_in_lowered_thread(fn: Callable[[], T], nice: int) -> T:
    """``fn()`` on a short-lived thread with ``nice`` added, so threads ``fn`` creates inherit it.

    Used to create onnxruntime sessions: their intra-op worker threads are spawned by the
    constructor and keep the creating thread's priority for the session's lifetime.
    """
    if nice <= 0:
        return fn()
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        lower_current_thread(nice)
        try:
            result.append(fn())
        except BaseException as exc:
            error.append(exc)

    thread = threading.Thread(target=target, name="lowered-priority")
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


def lower_worker_process(nice: int, intra_op_threads: int) -> None:
    """Initializer of a predict worker process: every thread lower, one BLAS thread, small sessions.

    Runs after the worker imported numpy, whose BLAS library may already have started its threads
    at normal priority (and a BLAS thread spin-waits after each call), so every thread that exists
    now is lowered (Linux: ``/proc/self/task``), and BLAS is limited to the calling thread: the
    preprocessing products are small. onnxruntime sessions created later by this process inherit
    its main thread's priority and use ``intra_op_threads`` threads each.
    """
    from threadpoolctl import threadpool_limits

    from server.registry import embedding

    threadpool_limits(1)
    embedding.configure_sessions(intra_op_threads=intra_op_threads, nice=0)
    if nice <= 0 or not sys.platform.startswith("linux"):
        return
    try:
        tids = [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:
        tids = [threading.get_native_id()]
    for tid in tids:
        try:
            os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))
        except OSError as exc:  # a thread may have ended, or a sandbox forbids it
            log.warning("could not lower the priority of thread %s: %s", tid, exc)
