"""The per-key request rate (CONTRACT §8: 430 with ``Retry-After``), as an exact moving window.

With Redis the counters are ``limits``' moving window in Redis, shared by every process. The
limit protects the service but decides nothing about a task, so when Redis cannot be reached
it lets requests through (and says so in the log) rather than turning a Redis outage into an
API outage.

Without Redis the counters live in this process, in :class:`LocalWindow`. ``limits`` has an
in-memory storage too, but it expires entries from a timer thread restarted every 10 ms; at
a thousand requests a second, starting those threads and waiting for them to take the GIL
cost the API about a quarter of its throughput. A deque of timestamps per key needs no
expiry at all: a key's old entries are dropped when that key is next counted.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import defaultdict, deque

from limits import RateLimitItem, parse_many
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from wavforge.errors import TooFrequent

NAMESPACE = "wavforge-key"
WARN_EVERY_SECONDS = 30.0
# A request waits at most this long for a counter; an unreachable host must not hang the API.
REDIS_TIMEOUTS = {"socket_connect_timeout": 1.0, "socket_timeout": 1.0}
log = logging.getLogger(__name__)


class LocalWindow:
    """An exact moving window per key, in this process's memory."""

    def __init__(self, item: RateLimitItem) -> None:
        self._amount = item.amount
        self._seconds = float(item.get_expiry())
        self._hits: defaultdict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def hit(self, key: str) -> bool:
        now = time.monotonic()
        with self._lock:
            hits = self._forget_before(key, now - self._seconds)
            if len(hits) >= self._amount:
                return False
            hits.append(now)
            return True

    def seconds_until_room(self, key: str) -> float:
        now = time.monotonic()
        with self._lock:
            hits = self._forget_before(key, now - self._seconds)
            if len(hits) < self._amount:
                return 0.0
            return hits[-self._amount] + self._seconds - now

    def _forget_before(self, key: str, start: float) -> deque[float]:
        hits = self._hits[key]
        while hits and hits[0] <= start:
            hits.popleft()
        return hits


class SharedWindow:
    """``limits``' moving window in shared storage (Redis), open when the storage is not."""

    def __init__(self, item: RateLimitItem, storage_uri: str) -> None:
        options = REDIS_TIMEOUTS if storage_uri.startswith("redis") else {}
        self._item = item
        self._limiter = MovingWindowRateLimiter(storage_from_string(storage_uri, **options))
        self._warned_at = -WARN_EVERY_SECONDS

    def hit(self, key: str) -> bool:
        try:
            return bool(self._limiter.hit(self._item, NAMESPACE, key))
        except Exception as error:  # the storage's own errors (redis, network) vary by backend
            if time.monotonic() - self._warned_at >= WARN_EVERY_SECONDS:
                self._warned_at = time.monotonic()
                log.warning("rate-limit storage unreachable (%s): not limiting", _name(error))
            return True

    def seconds_until_room(self, key: str) -> float:
        reset = self._limiter.get_window_stats(self._item, NAMESPACE, key).reset_time
        return reset - time.time()


class RateLimiter:
    """Every configured rate (``20/second;600/minute``) counted for each API key."""

    def __init__(self, rate: str, storage_uri: str = "memory://") -> None:
        local = storage_uri.startswith("memory")
        self.counts_remotely = not local
        self._windows = [
            (item, LocalWindow(item) if local else SharedWindow(item, storage_uri))
            for item in parse_many(rate)
        ]

    def hit(self, key_id: str) -> None:
        """Count one request of ``key_id``, or raise :class:`TooFrequent` if it is one too many."""
        for item, window in self._windows:
            if not window.hit(key_id):
                # Whole seconds, at least 1, as HTTP wants.
                retry_after = max(1, math.ceil(window.seconds_until_room(key_id)))
                raise TooFrequent(
                    f"call frequency too high: at most {_describe(item)} per API key",
                    headers={"Retry-After": str(retry_after)},
                )


def _describe(item: RateLimitItem) -> str:
    unit = item.GRANULARITY.name
    per = f"{item.multiples} {unit}s" if item.multiples > 1 else unit
    return f"{item.amount} requests per {per}"


def _name(error: Exception) -> str:
    """The error's class only: a connection error's text may include the storage URL."""
    return type(error).__name__
