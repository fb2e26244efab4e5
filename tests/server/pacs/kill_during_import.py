"""Run one pacs-import job and SIGKILL this process while it stores instance ``KILL_AT``.

The kill comes after that instance's files are written and its rows flushed, before its batch is
fsynced and committed: the worst moment for a crash. Batches hold at most two instances here, so the
batches before the kill were committed. Settings come from the ``MCGIP_*`` environment.
Usage: python -m tests.server.pacs.kill_during_import JOB_ID (with KILL_AT set).
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from server.pacs import importer
from server.settings import Settings
from server.worker.runner import Worker

_real_store_case = importer.store_case
_calls = 0


def _store_then_die(*args: Any, **kwargs: Any) -> Any:
    global _calls
    _calls += 1
    case = _real_store_case(*args, **kwargs)
    if _calls == int(os.environ["KILL_AT"]):
        os.kill(os.getpid(), signal.SIGKILL)
    return case


if __name__ == "__main__":
    importer.store_case = _store_then_die  # type: ignore[assignment]
    importer.MAX_BATCH = 2
    Worker(Settings()).run_job(int(sys.argv[1]))
    sys.exit(3)  # not reached when the kill happened
