"""Job handlers by kind. A handler takes a ``JobContext`` and the job's typed spec (the
``server.jobs.kinds`` class of its kind, parsed once by the worker) and returns the job's result: a
dict, or a function of the database session run in the transaction that marks the job succeeded (so,
e.g., a model version is registered if and only if its job succeeds)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from server.worker.context import JobContext
from server.worker.handlers import gaze, models, pacs, retrain

#: The spec argument is the class of the handler's kind (``SPECS[kind]``; tests/server/jobs/test_kinds.py
#: checks each entry's annotation), so the table itself can only say ``Any``.
Handler = Callable[[JobContext, Any], Any]

HANDLERS: dict[str, Handler] = {
    "session-features": gaze.run_features,
    "pairs": gaze.run_pairs,
    "retrain": retrain.run,
    "embed": models.run_embed,
    "export": models.run_export,
    "evaluate": models.run_evaluate,
    "pacs-import": pacs.run_import,
    "pacs-results": pacs.run_results,
}
