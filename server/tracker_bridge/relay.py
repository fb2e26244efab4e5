"""WebSocket ``/ws/tracker``: relays a reader's tracker bridge to that reader's viewer pages.

Both ends authenticate as the same user (bridge: ``?token=``; viewer page: its session cookie),
and the relay only ever forwards a user's gaze to that user's own sockets. The relay is live and
best-effort: nothing is stored here (the viewer streams what it maps into ``/ws/gaze``, which is
lossless), and a viewer that cannot keep up loses the oldest messages rather than stalling the
bridge. State lives in this process; with several server processes, bridge and viewer must reach
the same one (sticky routing by user).
"""

from __future__ import annotations

import asyncio
import json
import logging
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Final, Literal

from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect

from server.context import AppContext
from server.sockets import accept_user
from server.tracker_bridge.messages import RelayError, parse_bridge_message

logger = logging.getLogger(__name__)

router = APIRouter()

Role = Literal["bridge", "viewer"]
#: Messages waiting for one socket before the oldest are dropped.
QUEUE_LIMIT: Final = 512
CLOSE_BAD_ROLE: Final = 4400


@dataclass(eq=False)
class _Peer:
    user_id: int
    role: Role
    queue: asyncio.Queue[str] = field(default_factory=lambda: asyncio.Queue(QUEUE_LIMIT))
    dropped: int = 0

    def offer(self, text: str) -> None:
        if self.queue.full():
            with suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
            self.dropped += 1
            if self.dropped % 100 == 1:
                logger.warning(
                    "tracker relay: %s of user %s is slow; %d dropped", self.role, self.user_id, self.dropped
                )
        self.queue.put_nowait(text)


@dataclass
class TrackerRelay:
    """Connected bridges and viewers per user (one event loop; no locking needed)."""

    peers: dict[int, set[_Peer]] = field(default_factory=dict)

    def of(self, user_id: int, role: Role) -> list[_Peer]:
        return [p for p in self.peers.get(user_id, ()) if p.role == role]

    def join(self, peer: _Peer) -> None:
        self.peers.setdefault(peer.user_id, set()).add(peer)
        self._announce(peer.user_id)

    def leave(self, peer: _Peer) -> None:
        group = self.peers.get(peer.user_id)
        if group is not None:
            group.discard(peer)
            if not group:
                del self.peers[peer.user_id]
        self._announce(peer.user_id)

    def _announce(self, user_id: int) -> None:
        bridges, viewers = self.of(user_id, "bridge"), self.of(user_id, "viewer")
        for peer in bridges:
            peer.offer(json.dumps({"type": "status", "viewers": len(viewers)}))
        for peer in viewers:
            peer.offer(json.dumps({"type": "status", "bridges": len(bridges)}))

    def forward(self, user_id: int, text: str) -> int:
        viewers = self.of(user_id, "viewer")
        for peer in viewers:
            peer.offer(text)
        return len(viewers)


def relay_of(websocket: WebSocket) -> TrackerRelay:
    state = websocket.app.state
    relay: TrackerRelay | None = getattr(state, "tracker_relay", None)
    if relay is None:
        relay = state.tracker_relay = TrackerRelay()
    return relay


@router.websocket("/ws/tracker")
async def tracker_socket(websocket: WebSocket) -> None:
    """``?role=bridge`` sends gaze, ``?role=viewer`` receives it (messages: ``messages.py``)."""
    ctx: AppContext = websocket.app.state.ctx
    user_id = await accept_user(websocket, ctx, "tracker")
    if user_id is None:
        return
    role = websocket.query_params.get("role")
    if role not in ("bridge", "viewer"):
        await websocket.close(CLOSE_BAD_ROLE, "role must be bridge or viewer")
        return
    relay = relay_of(websocket)
    peer = _Peer(user_id, "bridge" if role == "bridge" else "viewer")
    relay.join(peer)
    sender = asyncio.create_task(_send_loop(websocket, peer))
    try:
        while True:
            text = await websocket.receive_text()
            if role == "viewer":
                continue  # viewers only listen
            try:
                message = parse_bridge_message(text)
            except RelayError as exc:
                peer.offer(json.dumps({"type": "error", "code": exc.code, "detail": exc.detail}))
                continue
            relay.forward(user_id, json.dumps(message))
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        relay.leave(peer)
        sender.cancel()
        with suppress(asyncio.CancelledError, Exception):
            await sender


async def _send_loop(websocket: WebSocket, peer: _Peer) -> None:
    while True:
        await websocket.send_text(await peer.queue.get())
