"""Failed-login backoff per (account, client): guessing locks out the guesser, not the account."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque

#: Most (account, client) pairs tracked at once; the least recently failed are forgotten first, so
#: an attacker cycling through made-up usernames cannot grow the server's memory without bound.
MAX_TRACKED = 100_000


class LoginRateLimiter:
    """Counts failed logins per key inside a sliding time window.

    The key is the account together with the client address: ten wrong passwords for ``reader1``
    from one machine make that machine wait, while ``reader1`` signing in from another machine and
    other accounts signing in from the same machine (e.g. everyone behind one reverse proxy
    without ``MCGIP_TRUSTED_PROXIES``) are unaffected. Kept in process memory: a restart forgets
    it, which is acceptable for throttling guessing.
    """

    def __init__(self, max_failures: int, window_s: float, max_tracked: int = MAX_TRACKED) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.max_tracked = max_tracked
        self._failures: OrderedDict[tuple[str, str], deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(username: str, client: str | None) -> tuple[str, str]:
        return (username.strip().lower(), client or "?")

    def _recent(self, key: tuple[str, str], now: float) -> deque[float] | None:
        q = self._failures.get(key)
        if q is None:
            return None
        while q and now - q[0] > self.window_s:
            q.popleft()
        if not q:
            del self._failures[key]
            return None
        return q

    def retry_after(self, key: tuple[str, str]) -> int | None:
        """Whole seconds until this account may be tried again from this client, or None."""
        now = time.monotonic()
        with self._lock:
            q = self._recent(key, now)
            if q is None or len(q) < self.max_failures:
                return None
            return max(1, int(self.window_s - (now - q[-self.max_failures])) + 1)

    def record_failure(self, key: tuple[str, str]) -> None:
        now = time.monotonic()
        with self._lock:
            q = self._recent(key, now)
            if q is None:
                q = self._failures[key] = deque(maxlen=self.max_failures)
            q.append(now)
            self._failures.move_to_end(key)
            while len(self._failures) > self.max_tracked:
                self._failures.popitem(last=False)

    def reset(self, key: tuple[str, str]) -> None:
        with self._lock:
            self._failures.pop(key, None)
