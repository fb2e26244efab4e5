"""WebSocket ``/ws/gaze``: authenticated, origin-checked, lossless gaze ingest.

One ``GazeConnection`` per socket reads messages in order, validates them (``frames.py``) and hands
valid frames to the process's ``GazeWriter``; a sender task writes acks and error frames back in
the order results arrive. Every queue of a socket is bounded and its messages are budgeted
(``limits.py``): beyond the frames waiting for their commit, or while it is over its sample budget,
a socket is not read, which pushes back on the client through TCP; a client whose replies pile up
unsent is not reading and is closed with 4408.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from contextlib import suppress
from dataclasses import dataclass
from functools import partial
from typing import Any, Final

from fastapi import APIRouter, FastAPI, WebSocket
from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocketDisconnect

from server.context import AppContext
from server.models import ReadingSession, SessionStatus
from server.reading import service
from server.reading.frames import Frame, Hello, ProtocolError, parse_message
from server.reading.limits import (
    CLOSE_NOT_READING,
    DEFAULT_LIMITS,
    Budgets,
    SocketLimits,
)
from server.reading.outbox import Outbox, OutboxFull
from server.reading.store import FrameIn, FrameResult
from server.reading.writer import GazeWriter, WriterOverloaded
from server.sockets import CLOSE_FORBIDDEN, CLOSE_NOT_FOUND, accept_user

logger = logging.getLogger(__name__)

router = APIRouter()

#: Most stored seqs above ``acked_through`` listed in a welcome.
MAX_ACKED_ABOVE: Final = 10_000

#: Longest a socket's queued messages are handled without giving the event loop to others.
YIELD_EVERY_S: Final = 0.002
_SEQ: Final = re.compile(r'"seq"\s*:\s*(\d{1,16})')
#: Error codes after which the socket is closed, with their close codes.
_CLOSING: Final = {"forbidden": CLOSE_FORBIDDEN, "unknown_session": CLOSE_NOT_FOUND}


def writer_for(app: FastAPI) -> GazeWriter:
    """The app's gaze writer (started by the router's lifespan, or here on first use)."""
    writer: GazeWriter | None = getattr(app.state, "gaze_writer", None)
    if writer is None:
        # Only when the app runs without its lifespan (some test clients); the thread is a daemon.
        logger.warning("gaze writer started outside the application lifespan")
        writer = GazeWriter(app.state.ctx.db)
        app.state.gaze_writer = writer
    writer.start()
    return writer


def resume_point(seqs: list[int]) -> tuple[int, list[int]]:
    """``acked_through`` and ``acked_above`` for stored ``seqs`` (ascending, distinct).

    Returns:
        The highest K with every seq 0..K stored (-1 if seq 0 is missing), and the stored seqs
        above K (at most ``MAX_ACKED_ABOVE``, lowest first).
    """
    through = -1
    for seq in seqs:
        if seq != through + 1:
            break
        through = seq
    above = [s for s in seqs if s > through][:MAX_ACKED_ABOVE]
    return through, above


@dataclass(frozen=True)
class _SessionState:
    reader_id: int
    status: SessionStatus
    seqs: list[int]


def _load_session(ctx: AppContext, session_id: int) -> _SessionState | None:
    with ctx.db.session() as session:
        reading = session.get(ReadingSession, session_id)
        if reading is None:
            return None
        return _SessionState(reading.reader_id, reading.status, service.stored_seqs(session, session_id))


def _error(
    code: str, detail: str, seq: int | None = None, *, suppressed: int = 0, retry_after_ms: int | None = None
) -> str:
    body: dict[str, Any] = {"type": "error", "seq": seq, "code": code, "detail": detail}
    if suppressed:
        body["suppressed"] = suppressed
    if retry_after_ms is not None:
        body["retry_after_ms"] = retry_after_ms
    return json.dumps(body)


def limits_for(app: FastAPI) -> SocketLimits:
    """The app's socket limits (``app.state.gaze_limits`` if set, else the defaults)."""
    limits = getattr(app.state, "gaze_limits", None)
    return limits if isinstance(limits, SocketLimits) else DEFAULT_LIMITS


def budgets_for(app: FastAPI, user_id: int, limits: SocketLimits) -> Budgets:
    """The user's budgets in this process (created full on first use; one small object per user)."""
    registry: dict[tuple[int, SocketLimits], Budgets] | None = getattr(app.state, "gaze_budgets", None)
    if registry is None:
        registry = {}
        app.state.gaze_budgets = registry
    key = (user_id, limits)
    budgets = registry.get(key)
    if budgets is None:
        budgets = registry[key] = Budgets(limits)
    return budgets


@router.websocket("/ws/gaze")
async def gaze_socket(websocket: WebSocket) -> None:
    """Gaze ingest; see docs/gaze-protocol.md."""
    ctx: AppContext = websocket.app.state.ctx
    user_id = await accept_user(websocket, ctx, "gaze")
    if user_id is None:
        return
    app = websocket.app
    limits = limits_for(app)
    budgets = budgets_for(app, user_id, limits)
    await GazeConnection(websocket, ctx, writer_for(app), user_id, limits, stats_for(app), budgets).run()


@dataclass
class SocketStats:
    """Counters of the process's gaze sockets (for logs, tests and benchmarks)."""

    closed_not_reading: int = 0
    rate_limited: int = 0
    errors_suppressed: int = 0


def stats_for(app: FastAPI) -> SocketStats:
    """The app's socket counters (created on first use)."""
    stats: SocketStats | None = getattr(app.state, "gaze_socket_stats", None)
    if stats is None:
        stats = SocketStats()
        app.state.gaze_socket_stats = stats
    return stats


class GazeConnection:
    """The protocol state of one authenticated socket (limits: ``server/reading/limits.py``)."""

    def __init__(
        self,
        websocket: WebSocket,
        ctx: AppContext,
        writer: GazeWriter,
        user_id: int,
        limits: SocketLimits = DEFAULT_LIMITS,
        stats: SocketStats | None = None,
        budgets: Budgets | None = None,
    ) -> None:
        self.websocket = websocket
        self.ctx = ctx
        self.writer = writer
        self.user_id = user_id
        self.limits = limits
        self.stats = stats if stats is not None else SocketStats()
        self.session_id: int | None = None
        self.loop = asyncio.get_running_loop()
        self.outbox = Outbox(limits.max_outbox_messages, limits.max_outbox_bytes)
        budgets = budgets if budgets is not None else Budgets(limits)
        self.budget = budgets.samples
        self.error_budget = budgets.errors
        self.suppressed = 0
        self.pause_s = 0.0
        #: Batched acknowledgements (``acks: "batch"`` in the hello): committed seqs not yet queued.
        self.batch_acks = False
        self._acks: list[int] = []
        self.in_flight_frames = 0
        self.in_flight_samples = 0
        self.capacity = asyncio.Event()
        self.capacity.set()
        self.closing = False
        self.close_code: int | None = None
        self._sender: asyncio.Task[None] | None = None
        self._run_task: asyncio.Task[Any] | None = None
        self._closer: asyncio.Task[None] | None = None
        self._stopped_by_closer = False

    async def run(self) -> None:
        self._run_task = asyncio.current_task()
        self._sender = sender = asyncio.create_task(self._send_loop())
        last_yield = self.loop.time()
        try:
            while not self.closing and not sender.done():
                message = await self.websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                await self._handle(message.get("text"), message.get("bytes"))
                # Over budget: leave the socket unread for a while; TCP slows the sender down.
                pause = max(self.pause_s, self.budget.wait_s())
                self.pause_s = 0.0
                if pause > 0 and not self.closing:
                    await asyncio.sleep(pause)
                    last_yield = self.loop.time()
                elif self.loop.time() - last_yield > YIELD_EVERY_S:
                    # Messages already queued are handled back to back without suspending: give
                    # other users' requests the event loop at least every few milliseconds.
                    await asyncio.sleep(0)
                    last_yield = self.loop.time()
            if self._closer is not None:
                await self._closer
            elif self.closing:
                # Let the sender flush the error frame and close the socket.
                with suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(asyncio.shield(sender), timeout=5)
        except WebSocketDisconnect:
            pass
        except asyncio.CancelledError:
            if not self._stopped_by_closer:
                raise
            # The closer gave up on a client that never took its close frame.
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
        finally:
            sender.cancel()
            with suppress(asyncio.CancelledError, Exception):
                await sender

    async def _send_loop(self) -> None:
        while True:
            for item in await self.outbox.take():
                if isinstance(item, int):
                    await self.websocket.close(item)
                    return
                await self.websocket.send_text(item)
                self.outbox.sent(item)

    # ---- replies ---------------------------------------------------------------------------------

    def _reply(self, message: str) -> None:
        if self._closer is not None:
            return
        try:
            self.outbox.put(message)
        except OutboxFull as exc:
            self._close_not_reading(str(exc))

    def _protocol_error(self, code: str, detail: str, seq: int | None = None) -> None:
        """An error reply to an invalid message, within the socket's error budget."""
        if not self.error_budget.take(1):
            self.suppressed += 1
            self.stats.errors_suppressed += 1
            return
        self._reply(_error(code, detail, seq, suppressed=self.suppressed))
        self.suppressed = 0

    def _close(self, code: int) -> None:
        """Close with ``code`` after sending what is queued."""
        self._flush_acks()
        if not self.closing:
            self.closing = True
            self.close_code = code
            self.outbox.close_after(code)

    def _close_not_reading(self, why: str) -> None:
        if self._closer is not None:
            return
        logger.warning("closing gaze socket of user %s: %s; the client is not reading", self.user_id, why)
        self.stats.closed_not_reading += 1
        self.closing = True
        self.close_code = CLOSE_NOT_READING
        self._closer = asyncio.create_task(self._close_now())

    async def _close_now(self) -> None:
        """Drop everything unsent and close 4408; stop waiting if the client never takes the close frame."""
        if self._sender is not None:
            self._sender.cancel()
        try:
            await asyncio.wait_for(
                self.websocket.close(CLOSE_NOT_READING, "client is not reading"), self.limits.close_grace_s
            )
        except (TimeoutError, WebSocketDisconnect, RuntimeError, OSError):
            logger.info("gaze socket of user %s did not take its close frame", self.user_id)
        run_task = self._run_task
        if run_task is not None and run_task is not asyncio.current_task() and not run_task.done():
            # The reading loop may wait for a message that never comes.
            self._stopped_by_closer = True
            run_task.cancel()

    # ---- messages --------------------------------------------------------------------------------

    async def _handle(self, text: str | None, data: bytes | None) -> None:
        raw = text if text is not None else (data or b"")
        units = self.limits.message_cost(len(raw))
        # A frame's samples are its '[' but one (the count is an upper bound; a C-speed scan).
        brackets = raw.count("[") if isinstance(raw, str) else raw.count(b"[")
        estimate = max(units, float(brackets - 1))
        if self.budget.wait_s(estimate) > 0:
            # Refused before parsing: a flood costs the server a scan per message, not a parse.
            self._rate_limited(_cheap_seq(raw), estimate)
            return
        try:
            message = parse_message(text if text is not None else raw)
        except ProtocolError as exc:
            self.budget.charge(units)
            self._protocol_error(exc.code, exc.detail, exc.seq)
            return
        if isinstance(message, Hello):
            self.budget.charge(units)
            await self._hello(message)
            return
        cost = max(units, float(message.samples.shape[0]))
        if not self.budget.take(cost):
            self._rate_limited(message.seq, cost)
            return
        await self._frame(message)

    def _flush_acks(self) -> None:
        """Queue one ``acks`` message for every seq committed since the last one."""
        if self._acks:
            seqs = ",".join(map(str, self._acks))
            self._acks.clear()
            self._reply(f'{{"type":"acks","seqs":[{seqs}]}}')

    def _rate_limited(self, seq: int | None, cost: float) -> None:
        wait = max(self.budget.wait_s(cost), self.limits.min_pause_s)
        self.pause_s = wait
        self.stats.rate_limited += 1
        detail = (
            f"this socket may send {self.limits.samples_per_s:g} samples/s (bursts up to "
            f"{self.limits.burst_samples:g}); the frame was not stored, resend it after {wait * 1000:.0f} ms"
        )
        # Not counted against the error budget: each refusal pauses the socket for >= min_pause_s.
        self._reply(_error("rate_limited", detail, seq, retry_after_ms=round(wait * 1000)))

    async def _hello(self, hello: Hello) -> None:
        if self.session_id is not None:
            detail = f"this socket is already bound to session {self.session_id}; open a new socket"
            self._protocol_error("bad_frame", detail)
            return
        state = await run_in_threadpool(_load_session, self.ctx, hello.session_id)
        if state is None:
            self._reply(_error("unknown_session", f"session {hello.session_id} does not exist"))
            self._close(CLOSE_NOT_FOUND)
            return
        if state.reader_id != self.user_id:
            self._reply(_error("forbidden", f"session {hello.session_id} belongs to another reader"))
            self._close(CLOSE_FORBIDDEN)
            return
        self.session_id = hello.session_id
        self.batch_acks = hello.acks == "batch"
        through, above = resume_point(state.seqs)
        welcome: dict[str, Any] = {
            "type": "welcome",
            "session_id": hello.session_id,
            "acked_through": through,
            "acked_above": above,
            "status": state.status.value,
            "acks": hello.acks,
        }
        self._reply(json.dumps(welcome))

    async def _frame(self, frame: Frame) -> None:
        if self.session_id is None:
            self._protocol_error("no_hello", "send hello with your session_id first", frame.seq)
            return
        n = int(frame.samples.shape[0])
        limits = self.limits
        # Bounded in frames and in samples (bytes); one frame may always be in flight.
        while self.in_flight_frames and (
            self.in_flight_frames >= limits.max_in_flight
            or self.in_flight_samples + n > limits.max_in_flight_samples
        ):
            self.capacity.clear()
            await self.capacity.wait()
        item = FrameIn(
            session_id=self.session_id, reader_id=self.user_id, seq=frame.seq, samples=frame.samples
        )
        try:
            self.writer.submit(item, self.loop, partial(self._on_result, frame.seq, n))
        except (WriterOverloaded, RuntimeError) as exc:
            self._reply(_error("unavailable", f"{exc}; resend the frame later", frame.seq))
            return
        self.in_flight_frames += 1
        self.in_flight_samples += n

    def _on_result(self, seq: int, n: int, result: FrameResult) -> None:
        """Runs on the event loop after the writer's commit (or failure)."""
        self.in_flight_frames -= 1
        self.in_flight_samples -= n
        self.capacity.set()
        if result.ok:
            if not self.batch_acks:
                self._reply(f'{{"type":"ack","seq":{seq}}}')
                return
            if not self._acks:
                # The writer hands a commit's results to the loop in one callback: this runs after
                # all of them, so the socket sends one message per commit instead of one per frame.
                self.loop.call_soon(self._flush_acks)
            self._acks.append(seq)
            return
        self._reply(_error(result.code or "unavailable", result.detail, seq))
        close_code = _CLOSING.get(result.code or "")
        if close_code is not None:
            self._close(close_code)


def _cheap_seq(raw: str | bytes) -> int | None:
    """The ``seq`` of an unparsed message, from a scan of its start (None if not found there)."""
    head = raw[:200]
    text = head if isinstance(head, str) else head.decode("utf-8", "replace")
    match = _SEQ.search(text)
    return int(match.group(1)) if match else None
