"""Child processes that ingest (decode, de-identify, render) retrieved instances for a PACS import.

pydicom's parsing and writing hold the GIL, so threads cannot run two ingests at once; processes can.
The children are forked from a forkserver that has imported only the imaging code: never from the
importing process itself (threads, database connections). The original bytes reach a child through
a pipe, never through a file.

A child exits by itself when the process that started the pool is gone (SIGKILL included): the pool's
task queue would otherwise keep it (and the forkserver, which it keeps alive) waiting forever.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor

#: How often a child checks that the importing process is still alive, in seconds.
_PARENT_POLL_S = 0.5


def _alive(pid: int) -> bool:
    """Whether process ``pid`` still runs: a killed process stays a zombie until its parent reaps it,
    and ``kill(pid, 0)`` succeeds on a zombie, so its state is read from /proc where there is one."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):  # gone, or the pid now belongs to another user
        return False
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def _exit_with(parent_pid: int) -> None:
    while _alive(parent_pid):
        time.sleep(_PARENT_POLL_S)
    os._exit(1)


def _child_init(parent_pid: int) -> None:
    threading.Thread(target=_exit_with, args=(parent_pid,), daemon=True, name="parent-watch").start()


def ingest_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of ``workers`` ingest processes (submit :func:`server.imaging.ingest.ingest_image`)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["server.pacs.ingest_pool", "server.imaging.ingest"])
    return ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=_child_init, initargs=(os.getpid(),)
    )


def warm_up(pool: ProcessPoolExecutor, workers: int) -> None:
    """Have ``pool`` start its processes now, without waiting for them (processes start on demand)."""
    for _ in range(workers):
        pool.submit(os.getpid)
