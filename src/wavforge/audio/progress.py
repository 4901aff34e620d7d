"""Throttled progress reporting for one conversion, possibly decoded in several parts."""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["PROGRESS_INTERVAL", "Progress", "ProgressCallback"]

ProgressCallback = Callable[[float], None]
PROGRESS_INTERVAL = 0.2  # seconds of wall time between progress reports
_INTERMEDIATE_CAP = 0.99  # 1.0 is reserved for "done", even when the duration was underestimated


class Progress:
    """At most one call per interval, values never decreasing, then exactly one 1.0.

    The worker renews its lease from this callback, so it keeps being called at the interval
    even when no estimate is possible (the value then simply stays where it was). When a file
    is decoded in parts, each part reports its own fraction and the mean is passed on.
    """

    def __init__(self, callback: ProgressCallback | None, interval: float, parts: int = 1) -> None:
        self._callback = callback
        self._interval = interval
        self._last_call = time.monotonic()
        self._value = 0.0
        self._parts = [0.0] * parts
        self.poll: Callable[[], None] = lambda: None  # drains the other parts' reports

    def due(self) -> bool:
        """Whether a report would go out now; cheap enough to ask for every frame."""
        return self._callback is not None and time.monotonic() - self._last_call >= self._interval

    def part(self, index: int, fraction: float) -> None:
        """Record how far one part is, without reporting."""
        self._parts[index] = max(self._parts[index], min(fraction, 1.0))

    def start_over(self, parts: int) -> None:
        """Count again from zero in ``parts`` parts; reports hold still until they pass the old
        value, since progress never goes backwards."""
        self._parts = [0.0] * parts

    def report(self) -> None:
        """Pass the current mean on to the callback (call when :meth:`due`)."""
        if self._callback is None:
            return
        self.poll()
        self._last_call = time.monotonic()
        mean = sum(self._parts) / len(self._parts)
        self._value = max(self._value, min(mean, _INTERMEDIATE_CAP))
        self._callback(self._value)

    def finish(self) -> None:
        """Report completion; runs before the WAV is finalised so a raise still removes it."""
        if self._callback is not None:
            self._value = 1.0
            self._callback(1.0)


def estimate(
    seconds_done: float, duration: float | None, position: int, span: tuple[int, int]
) -> float:
    """Decoded time over duration when known, else bytes read over the part's byte span."""
    if duration:
        return seconds_done / duration
    first, last = span
    return (position - first) / (last - first) if last > first else 0.0
