"""Jobs for predict pool tests with worker processes: a worker imports this small module only
(the test module's own imports would make every worker start slowly)."""

from __future__ import annotations

import os
import threading


def worker_report() -> tuple[int, list[int], int, int]:
    """(pid, nice of every thread, nice of a thread it starts, BLAS threads) inside a pool worker."""
    from threadpoolctl import threadpool_info

    tids = [int(t) for t in os.listdir("/proc/self/task")]
    seen: list[int] = []
    child = threading.Thread(
        target=lambda: seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
    )
    child.start()
    child.join()
    # numpy's BLAS, the one preprocessing uses (a library loaded after the initializer keeps its own).
    blas = [lib["num_threads"] for lib in threadpool_info() if "numpy" in lib["filepath"]]
    return os.getpid(), [os.getpriority(os.PRIO_PROCESS, t) for t in tids], seen[0], max(blas, default=1)


def dies() -> None:
    os._exit(3)  # as a worker killed for memory would


def fails() -> None:
    from server.imaging.errors import UnsupportedImageType

    raise UnsupportedImageType("unsupported image type: not PNG, JPEG or DICOM")
