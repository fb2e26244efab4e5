"""The bounded queue of replies one gaze socket still has to send."""

from __future__ import annotations

import asyncio
from collections import deque


class OutboxFull(Exception):
    """More replies are waiting than the socket's bound allows: the client is not reading."""


class Outbox:
    """Replies waiting to be sent, in order, bounded in count and bytes.

    Acks arrive in bursts (one per frame of a committed batch); appending to a deque and waking
    the sender once per burst costs less than a queue hand-off per message. ``sent`` is called by
    the sender once it handed messages to the transport; while the transport is blocked (the client
    does not read) messages stay counted here, so the bound covers them.

    Args:
        max_messages: Most replies waiting.
        max_bytes: Most bytes of replies waiting (UTF-8 length of ASCII JSON = ``len``).
    """

    def __init__(self, max_messages: int, max_bytes: int) -> None:
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self._items: deque[str | int] = deque()
        self._ready = asyncio.Event()
        self.waiting_messages = 0
        self.waiting_bytes = 0

    def put(self, message: str) -> None:
        """Queue ``message``.

        Raises:
            OutboxFull: the bound would be exceeded (nothing is queued).
        """
        size = len(message)
        if self.waiting_messages + 1 > self.max_messages or self.waiting_bytes + size > self.max_bytes:
            raise OutboxFull(
                f"{self.waiting_messages} replies ({self.waiting_bytes} bytes) are waiting to be sent"
            )
        self._items.append(message)
        self.waiting_messages += 1
        self.waiting_bytes += size
        self._ready.set()

    def close_after(self, code: int) -> None:
        """Queue a close with ``code`` after what is queued (not counted against the bound)."""
        self._items.append(code)
        self._ready.set()

    async def take(self) -> list[str | int]:
        """Everything queued (at least one item; an int is a close code); counted until ``sent``."""
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        items = list(self._items)
        self._items.clear()
        return items

    def sent(self, message: str) -> None:
        """``message`` (from ``take``) was handed to the transport."""
        self.waiting_messages -= 1
        self.waiting_bytes -= len(message)
