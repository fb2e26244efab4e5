"""The bridge loop: tracker events -> batches of screen-normalised samples -> ``/ws/tracker``.

A reader thread drains the tracker into a queue; the main loop sends a batch every ``batch_ms``
(one message per batch keeps the per-message overhead low at 1,200 Hz). Tracker timestamps become
wall-clock ms through ``TrackerClock``. When the connection drops, the bridge reconnects with
back-off; gaze taken while it is away is dropped (it is live data: the viewer records only what it
receives while the reader reads) and counted.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from server.tracker_bridge.clock import TrackerClock
from server.tracker_bridge.messages import MAX_SAMPLES
from server.tracker_bridge.source import Tracker, TrackerInfo, TrackerSample

logger = logging.getLogger(__name__)

_END = object()


def relay_url(server: str, token: str) -> str:
    """``ws(s)://host/ws/tracker?role=bridge&token=...`` for a server base URL."""
    parts = urlsplit(server if "://" in server else f"http://{server}")
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme)
    if scheme is None:
        raise ValueError(f"server URL must be http(s)://host[:port], got {server!r}")
    query = urlencode({"role": "bridge", "token": token})
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + "/ws/tracker", query, ""))


@dataclass
class BridgeStats:
    sent: int = 0
    dropped: int = 0
    batches: int = 0
    viewers: int = 0
    connects: int = 0
    info: dict[str, Any] = field(default_factory=dict)


class Bridge:
    """Forward one tracker to the reader's viewer pages through the server.

    Args:
        tracker: The tracker reader.
        url: Relay URL with the reader's token (``relay_url``).
        batch_ms: Most time a sample waits before it is sent.
        clock: Tracker -> wall clock mapping.
        wall_clock: Seconds since the epoch (``time.time``; tests may replace it).
    """

    def __init__(
        self,
        tracker: Tracker,
        url: str,
        *,
        batch_ms: float = 20.0,
        clock: TrackerClock | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.tracker = tracker
        self.url = url
        self.batch_s = batch_ms / 1000.0
        self.clock = clock or TrackerClock()
        self.wall_clock = wall_clock
        self.stats = BridgeStats()
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=200_000)
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def _read(self) -> None:
        try:
            for event in self.tracker.events():
                if isinstance(event, TrackerSample):
                    # Arrival time is taken here, as close to the tracker as the bridge gets.
                    self.clock.observe(event.t_s, self.wall_clock())
                    item: Any = (event, self.clock.to_epoch_ms(event.t_s))
                else:
                    item = event
                try:
                    self._queue.put_nowait(item)
                except queue.Full:
                    self.stats.dropped += 1
                if self._stop.is_set():
                    break
        except OSError as exc:
            logger.error("tracker connection failed: %s", exc)
        finally:
            self._queue.put(_END)

    def run(self, duration_s: float | None = None) -> BridgeStats:
        """Forward until the tracker ends, ``stop()`` is called or ``duration_s`` passes."""
        reader = threading.Thread(target=self._read, name="tracker-reader", daemon=True)
        reader.start()
        deadline = None if duration_s is None else time.monotonic() + duration_s
        backoff = 0.5
        try:
            while not self._stop.is_set() and (deadline is None or time.monotonic() < deadline):
                try:
                    with connect(self.url, open_timeout=10, close_timeout=2) as ws:
                        self.stats.connects += 1
                        backoff = 0.5
                        logger.info("connected to %s", self.url.split("?")[0])
                        if self.stats.info:
                            ws.send(json.dumps({"type": "tracker", "info": self.stats.info}))
                        self._pump(ws, deadline)
                        return self.stats
                except InvalidStatus as exc:
                    raise RuntimeError(f"the server refused the bridge: {exc}") from exc
                except ConnectionClosed as exc:
                    code = exc.rcvd.code if exc.rcvd is not None else None
                    if code in (4401, 4403):
                        raise RuntimeError(f"the server closed the bridge ({code}): check the token") from exc
                    backoff = self._retry_after(exc, backoff)
                except (OSError, InvalidHandshake, TimeoutError) as exc:
                    backoff = self._retry_after(exc, backoff)
            return self.stats
        finally:
            self._stop.set()
            self.tracker.close()
            reader.join(timeout=5)

    def _retry_after(self, exc: Exception, backoff: float) -> float:
        logger.warning("relay connection lost (%s); retrying in %.1f s", exc, backoff)
        self._discard_for(backoff)
        return min(backoff * 2, 10.0)

    def _discard_for(self, seconds: float) -> None:
        """Wait while disconnected, counting (and dropping) the gaze that arrives meanwhile."""
        end = time.monotonic() + seconds
        while time.monotonic() < end and not self._stop.is_set():
            try:
                item = self._queue.get(timeout=0.05)
            except queue.Empty:
                continue
            if item is _END:
                self._stop.set()
            elif isinstance(item, TrackerInfo):
                self.stats.info.update(item.info)
            else:
                self.stats.dropped += 1

    def _pump(self, ws: ClientConnection, deadline: float | None) -> None:
        """Send batches until the tracker ends, the deadline passes or ``stop()``; raises on a lost socket."""
        while not self._stop.is_set() and (deadline is None or time.monotonic() < deadline):
            batch, infos, ended = self._collect()
            for info in infos:
                self.stats.info.update(info.info)
                ws.send(json.dumps({"type": "tracker", "info": info.info}))
            for start in range(0, len(batch), MAX_SAMPLES):
                part = batch[start : start + MAX_SAMPLES]
                ws.send(json.dumps({"type": "samples", "samples": part}))
                self.stats.sent += len(part)
                self.stats.batches += 1
            self._read_status(ws)
            if ended:
                return

    def _collect(self) -> tuple[list[list[float]], list[TrackerInfo], bool]:
        batch: list[list[float]] = []
        infos: list[TrackerInfo] = []
        end = time.monotonic() + self.batch_s
        while True:
            remaining = end - time.monotonic()
            if remaining <= 0:
                return batch, infos, False
            try:
                item = self._queue.get(timeout=remaining)
            except queue.Empty:
                return batch, infos, False
            if item is _END:
                return batch, infos, True
            if isinstance(item, TrackerInfo):
                infos.append(item)
                continue
            sample, epoch_ms = item
            batch.append([round(epoch_ms, 3), sample.x, sample.y, 1 if sample.valid else 0])

    def _read_status(self, ws: ClientConnection) -> None:
        while True:
            try:
                text = ws.recv(timeout=0)
            except TimeoutError:
                return
            message = json.loads(text)
            if message.get("type") == "status":
                viewers = int(message.get("viewers", 0))
                if viewers != self.stats.viewers:
                    logger.info("%d viewer page(s) receiving gaze", viewers)
                self.stats.viewers = viewers
            elif message.get("type") == "error":
                logger.warning("relay refused a message: %s", message.get("detail"))
