"""Per-connection limits of the gaze WebSocket and the token bucket that enforces the rates.

Every user gets budgets (shared by that user's sockets, so reconnecting does not refill them) and
every socket bounded queues, so one client that floods (valid or invalid messages) or stops reading
can neither grow the server's memory without bound nor take the event loop from others:

* a *sample budget*: each message costs its number of samples, at least ``min_message_cost``, and
  at least one per ``bytes_per_unit`` bytes of text (so large invalid messages are not free). A
  frame that does not fit is refused with ``rate_limited`` and the socket is not read for a
  while, which slows the sender down through TCP instead of costing the server any work;
* an *error budget*: error replies to invalid messages beyond it are counted, not sent;
* bounded queues: unacknowledged frames (count and samples) and replies waiting to be sent
  (count and bytes). A client whose replies pile up beyond the bound is not reading: closed 4408.

The numbers are documented in docs/gaze-protocol.md (§9); change both together.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Final

from server.reading.frames import MAX_MESSAGE_BYTES, MAX_SAMPLES_PER_FRAME

#: Close code for a client whose unsent replies exceed the outbox bound (it does not read).
CLOSE_NOT_READING: Final = 4408


@dataclass(frozen=True)
class SocketLimits:
    """Limits of one gaze socket; the defaults are the documented ones.

    Attributes:
        samples_per_s: Sustained sample budget. Twice the fastest supported tracker (Tobii Pro,
            1,200 Hz) and above EyeLink's 2,000 Hz; browsers send 10-60 Hz.
        burst_samples: Budget a quiet user saves up, e.g. for resending frames after a reconnect
            (10,000 samples: ~80 s of 120 Hz gaze). At least one full frame.
        min_message_cost: Least a message costs (a flood of tiny messages costs the server per
            message, not per sample: WebSocket framing, decoding and dispatch).
        bytes_per_unit: A message costs at least one unit per this many bytes of text.
        min_pause_s: Shortest time the socket is not read after a refused frame; bounds how many
            ``rate_limited`` replies a flooder can provoke (at most ``1 / min_pause_s`` per second).
        errors_per_s: Sustained error replies to invalid messages; more are counted, not sent.
        error_burst: Error replies allowed at once before ``errors_per_s`` applies.
        max_in_flight: Frames waiting for their commit; beyond it the socket is not read.
        max_in_flight_samples: Samples waiting for their commit (bounds that queue's bytes:
            144 bytes per sample).
        max_outbox_messages: Replies waiting to be sent; beyond it the client is closed 4408.
        max_outbox_bytes: Bytes of replies waiting to be sent; beyond it, closed 4408.
        close_grace_s: How long the server waits for a non-reading client to take the close frame
            before it stops waiting for it.
    """

    samples_per_s: float = 2500.0
    burst_samples: float = 10_000.0
    min_message_cost: int = 5
    bytes_per_unit: int = 512
    min_pause_s: float = 0.05
    errors_per_s: float = 10.0
    error_burst: float = 20.0
    max_in_flight: int = 256
    max_in_flight_samples: int = 20_000
    max_outbox_messages: int = 1024
    max_outbox_bytes: int = 1024 * 1024
    close_grace_s: float = 10.0

    def __post_init__(self) -> None:
        for spec in fields(self):
            value = getattr(self, spec.name)
            if not value > 0:
                raise ValueError(f"{spec.name} must be > 0, got {value!r}")
        if self.burst_samples < MAX_SAMPLES_PER_FRAME:
            # Otherwise a valid full frame could never be accepted.
            raise ValueError(f"burst_samples must be >= {MAX_SAMPLES_PER_FRAME}, got {self.burst_samples}")
        if self.max_in_flight_samples < MAX_SAMPLES_PER_FRAME:
            raise ValueError(
                f"max_in_flight_samples must be >= {MAX_SAMPLES_PER_FRAME}, got {self.max_in_flight_samples}"
            )
        if self.max_outbox_bytes < 64 * 1024:
            # A welcome lists up to 10,000 seqs; it must always fit.
            raise ValueError(f"max_outbox_bytes must be >= 65536, got {self.max_outbox_bytes}")

    def message_cost(self, n_bytes: int, n_samples: int = 0) -> float:
        """Budget units of one message: its samples, at least ``min_message_cost``, at least 1 per
        ``bytes_per_unit`` bytes."""
        return float(max(self.min_message_cost, n_samples, -(-n_bytes // self.bytes_per_unit)))

    @property
    def largest_cost(self) -> float:
        """The cost of the largest message the parser reads (1 MiB, or 2,000 samples)."""
        return max(self.message_cost(MAX_MESSAGE_BYTES), float(MAX_SAMPLES_PER_FRAME))


DEFAULT_LIMITS: Final = SocketLimits()


class TokenBucket:
    """``rate`` tokens per second, holding at most ``capacity``; starts full.

    ``take`` never blocks: it says whether the tokens were there. ``charge`` takes tokens
    unconditionally (the balance may go negative: a debt the caller waits off with ``wait_s``).
    """

    def __init__(self, rate: float, capacity: float, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or capacity <= 0:
            raise ValueError(f"rate and capacity must be > 0, got {rate} and {capacity}")
        self.rate = rate
        self.capacity = capacity
        self._clock = clock
        self._tokens = capacity
        self._at = clock()

    def _refill(self) -> float:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._at) * self.rate)
        self._at = now
        return self._tokens

    def take(self, n: float) -> bool:
        """Take ``n`` tokens if there are that many; otherwise take nothing."""
        if self._refill() >= n:
            self._tokens -= n
            return True
        return False

    def charge(self, n: float) -> None:
        """Take ``n`` tokens even if the balance goes negative."""
        self._refill()
        self._tokens -= n

    def wait_s(self, n: float = 0.0) -> float:
        """Seconds until the bucket holds ``n`` tokens (0 if it does now)."""
        if self._tokens >= n:
            # Refilling only adds tokens (the balance never exceeds the capacity), so the answer
            # is 0 without reading the clock: the common case, checked for every message.
            return 0.0
        missing = n - self._refill()
        return max(0.0, missing / self.rate)


class Budgets:
    """The sample and error budgets of one user, shared by all of that user's sockets."""

    def __init__(self, limits: SocketLimits) -> None:
        self.samples = TokenBucket(limits.samples_per_s, limits.burst_samples)
        self.errors = TokenBucket(limits.errors_per_s, limits.error_burst)
