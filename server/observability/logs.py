"""Structured logs: every record carries the request id and job id of the work that produced it.

The ids live in context variables set by the request-id middleware (web) and by the worker around each
job; a log-record factory copies them onto every ``LogRecord`` as ``request_id`` and ``job_id`` so any
formatter can print them. ``JsonFormatter`` writes one JSON object per line for log shippers.
"""

from __future__ import annotations

import contextvars
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

REQUEST_ID_HEADER = "X-Request-ID"
request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
job_id_var: contextvars.ContextVar[int | None] = contextvars.ContextVar("job_id", default=None)

_installed = False


def install_record_factory() -> None:
    """Add ``request_id`` and ``job_id`` attributes to every log record (idempotent)."""
    global _installed
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        record.request_id = request_id_var.get()
        record.job_id = job_id_var.get()
        return record

    logging.setLogRecordFactory(factory)
    _installed = True


@contextmanager
def job_context(job_id: int) -> Iterator[None]:
    """Tag log records emitted inside the block (in this thread/task) with ``job_id``."""
    token = job_id_var.set(job_id)
    try:
        yield
    finally:
        job_id_var.reset(token)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, request_id, job_id, exception."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in ("request_id", "job_id"):
            value = getattr(record, key, None)
            if value is not None:
                data[key] = value
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


def _clean_request_id(value: str | None) -> str:
    # Accept a caller's id only if it is short and printable, so it cannot forge log lines.
    if value and len(value) <= 64 and value.replace("-", "").replace("_", "").isalnum():
        return value
    return uuid.uuid4().hex


async def request_id_middleware(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """Give each request an id (the caller's ``X-Request-ID`` if sane), log under it, echo it back."""
    rid = _clean_request_id(request.headers.get(REQUEST_ID_HEADER))
    token = request_id_var.set(rid)
    try:
        response = await call_next(request)
    finally:
        request_id_var.reset(token)
    response.headers[REQUEST_ID_HEADER] = rid
    return response


class ContextFormatter(logging.Formatter):
    """Plain-text lines with ``[request <id>]`` / ``[job <id>]`` after the logger name when set."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(ids)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        ids = ""
        if getattr(record, "request_id", None):
            ids += f" [request {record.request_id}]"  # type: ignore[attr-defined]
        if getattr(record, "job_id", None) is not None:
            ids += f" [job {record.job_id}]"  # type: ignore[attr-defined]
        record.ids = ids
        return super().format(record)


def configure_log_format(fmt: str | None = None) -> None:
    """Format the root handlers' output with the ids: ``json`` (one object per line) or ``text``.

    Args:
        fmt: ``"json"`` or ``"text"``; default from ``MCGIP_LOG_FORMAT`` (text when unset).
    """
    import os

    install_record_factory()
    chosen = (fmt or os.environ.get("MCGIP_LOG_FORMAT", "text")).lower()
    formatter: logging.Formatter = JsonFormatter() if chosen == "json" else ContextFormatter()
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=logging.INFO)
    for handler in root.handlers:
        handler.setFormatter(formatter)
