"""Job handlers by kind. A handler takes a ``JobContext`` and returns the job's result: a dict, or a
function of the database session run in the transaction that marks the job succeeded (so, e.g., a
model version is registered if and only if its job succeeds)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from server.worker.context import JobContext
from server.worker.handlers import gaze, models, pacs, retrain

Handler = Callable[[JobContext], Any]

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
