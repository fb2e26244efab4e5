"""WebSocket ``/ws/gaze``: authenticated, origin-checked, lossless gaze ingest.

One ``GazeConnection`` per socket reads messages in order, validates them (``frames.py``) and hands
valid frames to the process's ``GazeWriter``; a sender task writes acks and error frames back in
the order results arrive. Each socket may have at most ``MAX_IN_FLIGHT`` frames waiting for their
commit; beyond that it stops reading, which pushes back on the client through TCP.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from contextlib import suppress
from dataclasses import dataclass
from functools import partial
from typing import Any, Final, cast
from urllib.parse import urlsplit

from fastapi import APIRouter, FastAPI, HTTPException, Request, WebSocket
from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocketDisconnect

from server.context import AppContext
from server.deps import authenticate
from server.models import ReadingSession, SessionStatus, User
from server.reading import service
from server.reading.frames import Frame, Hello, ProtocolError, parse_message
from server.reading.store import FrameIn, FrameResult
from server.reading.writer import GazeWriter, WriterOverloaded

logger = logging.getLogger(__name__)

router = APIRouter()

MAX_IN_FLIGHT: Final = 256
#: Most stored seqs above ``acked_through`` listed in a welcome.
MAX_ACKED_ABOVE: Final = 10_000

CLOSE_UNAUTHENTICATED: Final = 4401
CLOSE_FORBIDDEN: Final = 4403
CLOSE_NOT_FOUND: Final = 4404
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


def origin_allowed(origin: str | None, host: str | None, allowed: list[str]) -> bool:
    """Whether a handshake's Origin may open the socket.

    Browsers always send Origin on WebSocket handshakes, so a page on another site (which could
    ride on the reader's cookie) is always recognisable; clients that send no Origin at all are
    scripts and tracker bridges, which authenticate with a token of their own.

    Args:
        origin: The Origin header, if any.
        host: The Host header the client connected to.
        allowed: Extra allowed origins (``MCGIP_ALLOWED_ORIGINS``), e.g. ``https://viewer.example``.
    """
    if origin is None:
        return True
    normalised = origin.strip().rstrip("/").lower()
    if normalised in {a.strip().rstrip("/").lower() for a in allowed}:
        return True
    parts = urlsplit(normalised)
    if parts.scheme not in ("http", "https") or not parts.netloc or host is None:
        return False
    return parts.netloc == host.strip().lower()


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


def authenticate_socket(websocket: WebSocket, ctx: AppContext) -> int | None:
    """The id of the user behind the handshake (``?token=``, bearer header or cookie), or None."""
    with ctx.db.session() as session:
        token = websocket.query_params.get("token")
        if token is not None:
            claims = ctx.tokens.decode(token)
            if claims is None or "write" not in claims.scopes:
                return None
            user = session.get(User, claims.user_id)
            if user is None or not user.is_active or user.token_version != claims.token_version:
                return None
            return user.id
        try:
            # authenticate() only reads headers, the cookie session and the scope, which a
            # WebSocket handshake carries exactly like a request.
            principal = authenticate(cast(Request, websocket), ctx, session)
        except HTTPException:
            return None
        if principal is None or "write" not in principal.scopes:
            return None
        return principal.user.id


def _load_session(ctx: AppContext, session_id: int) -> _SessionState | None:
    with ctx.db.session() as session:
        reading = session.get(ReadingSession, session_id)
        if reading is None:
            return None
        return _SessionState(reading.reader_id, reading.status, service.stored_seqs(session, session_id))


def _error(code: str, detail: str, seq: int | None = None) -> str:
    return json.dumps({"type": "error", "seq": seq, "code": code, "detail": detail})


@router.websocket("/ws/gaze")
async def gaze_socket(websocket: WebSocket) -> None:
    """Gaze ingest; see docs/gaze-protocol.md."""
    ctx: AppContext = websocket.app.state.ctx
    origin = websocket.headers.get("origin")
    if not origin_allowed(origin, websocket.headers.get("host"), ctx.settings.allowed_origins):
        logger.warning("gaze socket refused for origin %r", origin)
        await websocket.accept()
        await websocket.close(CLOSE_FORBIDDEN, "origin not allowed")
        return
    user_id = await run_in_threadpool(authenticate_socket, websocket, ctx)
    await websocket.accept()
    if user_id is None:
        await websocket.close(CLOSE_UNAUTHENTICATED, "not authenticated")
        return
    await GazeConnection(websocket, ctx, writer_for(websocket.app), user_id).run()


class _Outbox:
    """Messages waiting to be sent, or an int: close with that code after what came before.

    Acks arrive in bursts (one per frame of a committed batch); appending to a deque and waking
    the sender once per burst costs less than a queue hand-off per message.
    """

    def __init__(self) -> None:
        self._items: deque[str | int] = deque()
        self._ready = asyncio.Event()

    def put_nowait(self, item: str | int) -> None:
        self._items.append(item)
        self._ready.set()

    async def take(self) -> list[str | int]:
        """Everything waiting (at least one item)."""
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        items = list(self._items)
        self._items.clear()
        return items


class GazeConnection:
    """The protocol state of one authenticated socket."""

    def __init__(self, websocket: WebSocket, ctx: AppContext, writer: GazeWriter, user_id: int) -> None:
        self.websocket = websocket
        self.ctx = ctx
        self.writer = writer
        self.user_id = user_id
        self.session_id: int | None = None
        self.loop = asyncio.get_running_loop()
        # Messages to send, or an int: close with that code after sending what came before.
        self.outbox = _Outbox()
        self.in_flight = asyncio.Semaphore(MAX_IN_FLIGHT)
        self.closing = False

    async def run(self) -> None:
        sender = asyncio.create_task(self._send_loop())
        try:
            while not self.closing and not sender.done():
                message = await self.websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                await self._handle(message.get("text"), message.get("bytes"))
            if self.closing:
                # Let the sender flush the error frame and close the socket.
                with suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(asyncio.shield(sender), timeout=5)
        except WebSocketDisconnect:
            pass
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

    def _close(self, code: int) -> None:
        if not self.closing:
            self.closing = True
            self.outbox.put_nowait(code)

    async def _handle(self, text: str | None, data: bytes | None) -> None:
        try:
            message = parse_message(text if text is not None else (data or b""))
        except ProtocolError as exc:
            self.outbox.put_nowait(_error(exc.code, exc.detail, exc.seq))
            return
        if isinstance(message, Hello):
            await self._hello(message)
        else:
            await self._frame(message)

    async def _hello(self, hello: Hello) -> None:
        if self.session_id is not None:
            detail = f"this socket is already bound to session {self.session_id}; open a new socket"
            self.outbox.put_nowait(_error("bad_frame", detail))
            return
        state = await run_in_threadpool(_load_session, self.ctx, hello.session_id)
        if state is None:
            self.outbox.put_nowait(_error("unknown_session", f"session {hello.session_id} does not exist"))
            self._close(CLOSE_NOT_FOUND)
            return
        if state.reader_id != self.user_id:
            self.outbox.put_nowait(
                _error("forbidden", f"session {hello.session_id} belongs to another reader")
            )
            self._close(CLOSE_FORBIDDEN)
            return
        self.session_id = hello.session_id
        through, above = resume_point(state.seqs)
        welcome: dict[str, Any] = {
            "type": "welcome",
            "session_id": hello.session_id,
            "acked_through": through,
            "acked_above": above,
            "status": state.status.value,
        }
        self.outbox.put_nowait(json.dumps(welcome))

    async def _frame(self, frame: Frame) -> None:
        if self.session_id is None:
            self.outbox.put_nowait(_error("no_hello", "send hello with your session_id first", frame.seq))
            return
        await self.in_flight.acquire()
        item = FrameIn(
            session_id=self.session_id, reader_id=self.user_id, seq=frame.seq, samples=frame.samples
        )
        try:
            self.writer.submit(item, self.loop, partial(self._on_result, frame.seq))
        except (WriterOverloaded, RuntimeError) as exc:
            self.in_flight.release()
            self.outbox.put_nowait(_error("unavailable", f"{exc}; resend the frame later", frame.seq))

    def _on_result(self, seq: int, result: FrameResult) -> None:
        """Runs on the event loop after the writer's commit (or failure)."""
        self.in_flight.release()
        if result.ok:
            self.outbox.put_nowait(f'{{"type":"ack","seq":{seq}}}')
            return
        self.outbox.put_nowait(_error(result.code or "unavailable", result.detail, seq))
        close_code = _CLOSING.get(result.code or "")
        if close_code is not None:
            self._close(close_code)
