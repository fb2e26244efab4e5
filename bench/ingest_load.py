"""Load generator for ``mcgip bench ingest``: simulated readers on real WebSocket connections.

Each reader is one asyncio task with its own connection. It says hello, then sends frames of
pre-serialised samples either paced (one frame every ``frame_ms``, readers spread evenly over the
frame period, as browsers would be) or saturating (as fast as a window of unacknowledged frames
allows). Every reply is matched to its frame by ``seq`` with a cheap prefix scan, so the durable
endpoint's acks and the echo endpoint's echoed frames cost the client the same.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from contextlib import suppress
from dataclasses import dataclass, field

from websockets.asyncio.client import ClientConnection, connect

_SEQ = re.compile(r'"seq":\s*(\d+)')
_ACKS = '{"type":"acks","seqs":['
#: How long a reader waits for outstanding acks after its last frame.
DRAIN_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class Reader:
    session_id: int
    token: str


@dataclass(frozen=True)
class LoadSpec:
    """One phase of load.

    Attributes:
        url: ``ws://host:port/path`` (token appended per reader).
        readers: One connection each.
        blocks: Pre-serialised JSON sample arrays; frame ``seq`` of reader ``i`` carries block
            ``(i + seq) % len(blocks)``.
        frame_ms: Period between frames of one reader when paced.
        duration_s: How long frames are sent.
        window: None for paced sending, else the most unacknowledged frames per connection.
        resume: After the drain timeout, reconnect and resend what is not stored (durable only).
        batch_acks: Ask for one ``acks`` message per commit (``"acks": "batch"`` in the hello)
            instead of one ``ack`` per frame (the echo endpoint ignores it).
    """

    url: str
    readers: list[Reader]
    blocks: list[str]
    frame_ms: float
    duration_s: float
    window: int | None = None
    resume: bool = False
    batch_acks: bool = True


@dataclass
class ReaderLog:
    sent: dict[int, int] = field(default_factory=dict)  # seq -> block index
    acked: set[int] = field(default_factory=set)
    latencies_s: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    last_ack: float = 0.0
    resent: int = 0


@dataclass
class LoadResult:
    logs: list[ReaderLog]
    active_s: float  # from the common start to the last acknowledgement

    @property
    def frames_acked(self) -> int:
        return sum(len(log.acked) for log in self.logs)

    @property
    def frames_sent(self) -> int:
        return sum(len(log.sent) for log in self.logs)


def block_index(reader: int, seq: int, n_blocks: int) -> int:
    return (reader + seq) % n_blocks


async def _receive(
    ws: ClientConnection, log: ReaderLog, sent_at: dict[int, float], window: asyncio.Semaphore | None
) -> None:
    async for message in ws:
        now = time.perf_counter()
        text = message if isinstance(message, str) else message.decode()
        if text.startswith(_ACKS):
            # One message per commit listing every committed seq (``acks: "batch"``).
            seqs = [int(s) for s in text[len(_ACKS) : -2].split(",")]
        else:
            match = _SEQ.search(text, 0, 64)
            if not text.startswith(('{"type":"ack"', '{"type":"frame"')) or match is None:
                log.errors.append(text[:200])
                continue
            seqs = [int(match.group(1))]
        for seq in seqs:
            if seq in log.acked:
                continue
            log.acked.add(seq)
            log.latencies_s.append(now - sent_at[seq])
            log.last_ack = now
            if window is not None:
                window.release()


class _Start:
    """Everyone connects and says hello first; the clock starts when the last one is ready."""

    def __init__(self, n: int) -> None:
        self.waiting = n
        self.event = asyncio.Event()
        self.at = 0.0

    async def ready(self) -> float:
        self.waiting -= 1
        if self.waiting == 0:
            self.at = time.perf_counter() + 0.2
            self.event.set()
        await self.event.wait()
        return self.at

    def give_up(self) -> None:
        # A failed connection must not leave the others waiting forever.
        self.waiting -= 1
        if self.waiting == 0 and not self.event.is_set():
            self.at = time.perf_counter()
            self.event.set()


async def _reader(index: int, spec: LoadSpec, gate: _Start, log: ReaderLog) -> None:
    try:
        await _stream(index, spec, gate, log)
    except BaseException:
        if not gate.event.is_set():
            gate.give_up()
        raise


async def _stream(index: int, spec: LoadSpec, gate: _Start, log: ReaderLog) -> None:
    reader = spec.readers[index]
    url = f"{spec.url}?token={reader.token}"
    n_blocks = len(spec.blocks)
    async with connect(url, compression=None, max_size=None, ping_interval=None, open_timeout=60) as ws:
        await ws.send(_hello(reader, spec))
        await ws.recv()
        start = await gate.ready()
        sent_at: dict[int, float] = {}
        window = asyncio.Semaphore(spec.window) if spec.window else None
        receiver = asyncio.create_task(_receive(ws, log, sent_at, window))
        period = spec.frame_ms / 1000.0
        offset = period * index / len(spec.readers)
        end = start + spec.duration_s
        seq = 0
        while True:
            if window is None:
                due = start + offset + seq * period
                if due >= end:
                    break
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            else:
                await window.acquire()
                if time.perf_counter() >= end:
                    break
            block = block_index(index, seq, n_blocks)
            log.sent[seq] = block
            sent_at[seq] = time.perf_counter()
            await ws.send(f'{{"type":"frame","seq":{seq},"samples":{spec.blocks[block]}}}')
            seq += 1
        await _drain(log, receiver)
    if spec.resume and len(log.acked) < len(log.sent):
        await _resume(url, reader, spec, index, log)


def _hello(reader: Reader, spec: LoadSpec) -> str:
    acks = ',"acks":"batch"' if spec.batch_acks else ""
    return f'{{"type":"hello","session_id":{reader.session_id}{acks}}}'


async def _drain(log: ReaderLog, receiver: asyncio.Task[None]) -> None:
    deadline = time.perf_counter() + DRAIN_TIMEOUT_S
    while len(log.acked) < len(log.sent) and time.perf_counter() < deadline and not receiver.done():
        await asyncio.sleep(0.02)
    receiver.cancel()
    with suppress(asyncio.CancelledError, Exception):  # the receiver ends with the connection
        await receiver


async def _resume(url: str, reader: Reader, spec: LoadSpec, index: int, log: ReaderLog) -> None:
    """What a real client does after losing its socket: reconnect, learn what is stored, resend the rest."""
    async with connect(url, compression=None, max_size=None, ping_interval=None, open_timeout=60) as ws:
        await ws.send(_hello(reader, spec))
        welcome = json.loads(await ws.recv())
        stored = set(range(welcome["acked_through"] + 1)) | set(welcome["acked_above"])
        log.acked |= stored & set(log.sent)
        sent_at: dict[int, float] = {}
        receiver = asyncio.create_task(_receive(ws, log, sent_at, None))
        for seq, block in sorted(log.sent.items()):
            if seq not in log.acked:
                log.resent += 1
                sent_at[seq] = time.perf_counter()
                await ws.send(f'{{"type":"frame","seq":{seq},"samples":{spec.blocks[block]}}}')
        await _drain(log, receiver)


async def run_load(spec: LoadSpec) -> LoadResult:
    """Run one phase; returns what each reader sent and got acknowledged."""
    logs = [ReaderLog() for _ in spec.readers]
    gate = _Start(len(spec.readers))
    tasks = [asyncio.create_task(_reader(i, spec, gate, logs[i])) for i in range(len(spec.readers))]
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for log, result in zip(logs, results, strict=True):
        if isinstance(result, BaseException):
            log.errors.append(f"connection failed: {result!r}")
    last = max((log.last_ack for log in logs), default=0.0)
    return LoadResult(logs=logs, active_s=max(last - gate.at, 1e-9))
