"""Per-key request rate limiting: a token bucket per API key.

Each key's bucket holds up to `burst` tokens (default: one minute's worth) and refills at
`rate_per_minute / 60` tokens a second; a request spends one. A key may therefore burst a full
minute's allowance at once, then continues at the steady rate.

State is in memory, in this process: restarting resets it. This is the single-process default;
several workers (`ragtune serve --workers N`, `server.shared_state: database`) use
`assistant.shared_limits.DatabaseRateLimiter`, the same arithmetic on rows every worker shares,
so N workers never allow N times the rate.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import NamedTuple, Protocol


class Decision(NamedTuple):
    allowed: bool
    retry_after_s: float  # 0 when allowed; else seconds until the request would be allowed

    @property
    def retry_after_header(self) -> str:
        """HTTP Retry-After wants whole seconds; round up so a client that waits is let in."""
        return str(max(1, math.ceil(self.retry_after_s)))


class Limiter(Protocol):
    """What the API needs of a limiter: this module's RateLimiter or shared_limits.DatabaseRateLimiter."""

    shared: bool  # True: each check is a database write, run off the event loop

    def check(self, key: str, cost: float = 1.0) -> Decision: ...

    def remaining(self, key: str) -> int: ...


class RateLimiter:
    """Thread-safe token buckets keyed by any string (the API key's id)."""

    # Buckets idle long enough to be full again carry no information; drop them every so often
    # so memory tracks active keys, not every key ever seen.
    PRUNE_EVERY = 1024
    shared = False

    def __init__(
        self,
        rate_per_minute: float,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        if rate_per_minute <= 0:
            raise ValueError("rate_per_minute must be positive")
        self.rate_per_s = rate_per_minute / 60.0
        self.burst = float(burst if burst is not None else rate_per_minute)
        if self.burst < 1:
            raise ValueError("burst must allow at least one request")
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at time)
        self._calls = 0

    def check(self, key: str, cost: float = 1.0) -> Decision:
        """Spend `cost` tokens from `key`'s bucket if it has them; a refused request spends nothing."""
        with self._lock:
            now = self._clock()
            tokens = self._level(key, now)
            if tokens >= cost:
                self._buckets[key] = (tokens - cost, now)
                decision = Decision(True, 0.0)
            else:
                self._buckets[key] = (tokens, now)
                decision = Decision(False, (cost - tokens) / self.rate_per_s)
            self._calls += 1
            if self._calls % self.PRUNE_EVERY == 0:
                self._prune(now)
            return decision

    def remaining(self, key: str) -> int:
        """Whole requests `key` could make right now (for X-RateLimit-Remaining)."""
        with self._lock:
            return int(self._level(key, self._clock()))

    def reset(self, key: str | None = None) -> None:
        with self._lock:
            if key is None:
                self._buckets.clear()
            else:
                self._buckets.pop(key, None)

    def _level(self, key: str, now: float) -> float:
        tokens, at = self._buckets.get(key, (self.burst, now))
        return min(self.burst, tokens + max(0.0, now - at) * self.rate_per_s)

    def _prune(self, now: float) -> None:
        full = [k for k in self._buckets if self._level(k, now) >= self.burst]
        for key in full:
            del self._buckets[key]
