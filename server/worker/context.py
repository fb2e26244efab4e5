"""What a job handler gets: its job, progress reporting, heartbeats, cancellation and subprocesses.

A heartbeat thread writes the job's heartbeat, progress, progress info and log tail every
``heartbeat_s`` seconds (1 s by default, so the dashboard sees progress at least every 2 s) and reads
back whether an admin asked to cancel it or whether the job was taken away (requeued after this
worker was presumed dead). Either way the running subprocess's whole process group is killed.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from server.db import Database
from server.jobs import queue
from server.jobs.queue import Beat, JobRef
from server.observability.logs import job_context
from server.settings import Settings
from server.storage import BlobStore
from server.worker.options import WorkerOptions

logger = logging.getLogger(__name__)

#: Lines of subprocess output kept in the job's log tail.
LOG_TAIL_LINES = 200
_PR_SET_PDEATHSIG = 1


class JobCancelled(Exception):
    """An admin cancelled the job while it ran."""


class JobLost(Exception):
    """The job is no longer this worker's (it was requeued or finished elsewhere)."""


class PermanentError(Exception):
    """A failure that a retry cannot fix (invalid config, missing data): fail without retrying."""


def _load_prctl() -> Any:
    try:
        return ctypes.CDLL("libc.so.6", use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux: the stale-heartbeat requeue still bounds the damage
        return None


# Resolved once in the parent: the child must not dlopen (or take any lock) between fork and exec.
_PRCTL = _load_prctl()


def _die_with_parent() -> None:
    """In the child before exec: own process group, and SIGKILL when the worker thread dies.

    The new process group lets cancel kill the trainer and everything it started (data loaders,
    torchrun workers); the parent-death signal stops an orphaned trainer from writing into a job
    folder that a new worker has resumed after this worker was killed.
    """
    os.setsid()
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL)


class JobContext:
    """Runtime services for one claimed job.

    Args:
        db: the worker's database.
        settings: configuration (data directory, ...).
        job: the claimed job.
        worker_id: this worker's id.
        options: worker knobs (heartbeat period, trainer command, GPUs).
    """

    def __init__(
        self, db: Database, settings: Settings, job: JobRef, worker_id: str, options: WorkerOptions
    ) -> None:
        self.db = db
        self.settings = settings
        self.job = job
        self.worker_id = worker_id
        self.options = options
        self.heartbeat_s = options.heartbeat_s
        self.blobs = BlobStore(settings.blob_dir)
        self.stop_event = threading.Event()
        self.outcome: Beat = Beat.ok
        self._lock = threading.Lock()
        self._progress: float | None = None
        self._info: dict[str, Any] = dict(job.progress_info)
        self._info_dirty = False
        self._lines: collections.deque[str] = collections.deque(
            job.log_tail.splitlines(), maxlen=LOG_TAIL_LINES
        )
        self._log_dirty = False
        self._proc: subprocess.Popen[str] | None = None
        self._thread: threading.Thread | None = None

    # ---- folders --------------------------------------------------------------------------------
    @property
    def job_dir(self) -> Path:
        """``<blobs>/jobs/<id>``: snapshot, config, checkpoints; kept across attempts for resume."""
        path = self.blobs.path(f"jobs/{self.job.id}")
        path.mkdir(parents=True, exist_ok=True)
        return path

    # ---- reporting ------------------------------------------------------------------------------
    def report(self, progress: float | None = None, **info: Any) -> None:
        """Set progress (0..1) and merge ``info`` into progress_info; written by the next heartbeat."""
        with self._lock:
            if progress is not None:
                self._progress = progress
            if info:
                self._info.update(info)
                self._info_dirty = True

    def info(self) -> dict[str, Any]:
        """A copy of the progress info as it stands."""
        with self._lock:
            return dict(self._info)

    def log(self, line: str) -> None:
        """Append a line to the persisted log tail (and the worker log)."""
        logger.info("%s", line)
        self.append_output(line)

    def append_output(self, line: str) -> None:
        with self._lock:
            self._lines.append(line.rstrip("\n")[:2000])
            self._log_dirty = True

    def abandon(self) -> None:
        """Stop working on the job (worker shutting down): kill the subprocess, raise JobLost next."""
        self.outcome = Beat.lost
        self.stop_event.set()
        self.kill_process()

    def check(self) -> None:
        """Raise if the job was cancelled or taken away (call between units of work)."""
        if self.outcome is Beat.cancel:
            raise JobCancelled(f"job {self.job.id} cancelled")
        if self.outcome is Beat.lost:
            raise JobLost(f"job {self.job.id} is no longer owned by {self.worker_id}")

    # ---- heartbeat ------------------------------------------------------------------------------
    def flush(self) -> Beat:
        """Write one heartbeat with pending progress; act on cancel/loss."""
        with self._lock:
            progress, self._progress = self._progress, None
            info = dict(self._info) if self._info_dirty else None
            log_tail = "\n".join(self._lines) if self._log_dirty else None
            self._info_dirty = self._log_dirty = False
        beat = queue.heartbeat(
            self.db, self.job.id, self.worker_id, progress=progress, progress_info=info, log_tail=log_tail
        )
        if beat is not Beat.ok and self.outcome is Beat.ok:
            logger.warning("job %s: %s; stopping it", self.job.id, beat.value)
            self.outcome = beat
            self.stop_event.set()
            self.kill_process()
        return beat

    def _beat_loop(self) -> None:
        with job_context(self.job.id):
            while not self.stop_event.wait(self.heartbeat_s):
                try:
                    self.flush()
                except Exception:  # a database hiccup must not kill the heartbeat thread
                    logger.exception("job %s: heartbeat failed", self.job.id)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._beat_loop, name=f"heartbeat-{self.job.id}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the heartbeat thread and write the last pending progress."""
        self.stop_event.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self.outcome is Beat.ok:
            self.flush()

    # ---- subprocesses ---------------------------------------------------------------------------
    def run_process(
        self,
        cmd: Sequence[str],
        *,
        on_line: Callable[[str], None] | None = None,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> int:
        """Run ``cmd`` in its own process group, feeding each stdout line to ``on_line``.

        stderr goes to the log tail. Cancel or loss of the job kills the process group.

        Returns:
            The exit status (negative: killed by that signal).

        Raises:
            JobCancelled, JobLost: the job was stopped while the process ran.
        """
        self.check()
        full_env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen(
            list(cmd),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
            cwd=cwd,
            env=full_env,
            preexec_fn=_die_with_parent,  # noqa: PLW1509  (needed for the process group + death signal)
        )
        with self._lock:
            self._proc = proc
        if self.stop_event.is_set():  # cancelled between check() and Popen
            self.kill_process()
        err_thread = threading.Thread(target=self._drain_stderr, args=(proc,), daemon=True)
        err_thread.start()
        assert proc.stdout is not None
        for line in proc.stdout:
            if on_line is not None:
                try:
                    on_line(line.rstrip("\n"))
                except Exception:  # a malformed progress line must not abort the job
                    logger.exception("job %s: could not handle output line %r", self.job.id, line[:200])
        code = proc.wait()
        err_thread.join(timeout=5)
        with self._lock:
            self._proc = None
        self.check()
        return code

    def _drain_stderr(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            self.append_output(line)

    def kill_process(self, grace_s: float = 5.0) -> None:
        """SIGTERM the running subprocess's process group, then SIGKILL after ``grace_s``."""
        with self._lock:
            proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
