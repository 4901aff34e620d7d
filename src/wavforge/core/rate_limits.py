"""The per-key request rate (CONTRACT §8: 430 with ``Retry-After``), counted by ``limits``.

Counters live in process memory in the embedded default; a storage URI such as
``redis://...`` shares them between processes. The limit protects the service but decides
nothing about a task, so when its storage cannot be reached it lets requests through (and
says so in the log) rather than turning a Redis outage into an API outage.
"""

from __future__ import annotations

import logging
import math
import time

from limits import RateLimitItem, parse_many
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from wavforge.errors import TooFrequent

NAMESPACE = "wavforge-key"
WARN_EVERY_SECONDS = 30.0
# A request waits at most this long for a counter; an unreachable host must not hang the API.
REDIS_TIMEOUTS = {"socket_connect_timeout": 1.0, "socket_timeout": 1.0}
log = logging.getLogger(__name__)


class RateLimiter:
    """A moving window per API key: exact, so a burst at a window's edge cannot double the rate."""

    def __init__(self, rate: str, storage_uri: str = "memory://") -> None:
        self._items: list[RateLimitItem] = parse_many(rate)
        options = REDIS_TIMEOUTS if storage_uri.startswith("redis") else {}
        self._limiter = MovingWindowRateLimiter(storage_from_string(storage_uri, **options))
        self._warned_at = -WARN_EVERY_SECONDS

    def hit(self, key_id: str) -> None:
        """Count one request of ``key_id``, or raise :class:`TooFrequent` if it is one too many."""
        for item in self._items:
            if not self._counted(item, key_id):
                raise TooFrequent(
                    f"call frequency too high: at most {_describe(item)} per API key",
                    headers={"Retry-After": str(self._retry_after(item, key_id))},
                )

    def _counted(self, item: RateLimitItem, key_id: str) -> bool:
        try:
            return bool(self._limiter.hit(item, NAMESPACE, key_id))
        except Exception as error:  # the storage's own errors (redis, network) vary by backend
            if time.monotonic() - self._warned_at >= WARN_EVERY_SECONDS:
                self._warned_at = time.monotonic()
                log.warning("rate-limit storage unreachable (%s): not limiting", _name(error))
            return True

    def _retry_after(self, item: RateLimitItem, key_id: str) -> int:
        """Whole seconds until the window has room again (at least 1, as HTTP wants)."""
        reset = self._limiter.get_window_stats(item, NAMESPACE, key_id).reset_time
        return max(1, math.ceil(reset - time.time()))


def _describe(item: RateLimitItem) -> str:
    unit = item.GRANULARITY.name
    per = f"{item.multiples} {unit}s" if item.multiples > 1 else unit
    return f"{item.amount} requests per {per}"


def _name(error: Exception) -> str:
    """The error's class only: a connection error's text may include the storage URL."""
    return type(error).__name__
