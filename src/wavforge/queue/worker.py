"""A worker: Huey consumer threads plus the sweep and the retention purge, in this process.

``wavforge serve`` starts one beside the API; ``wavforge worker`` runs one alone. Stopping
takes no new task and gives running conversions ``shutdown_grace_seconds`` to finish; what
is still running then is handed back to the queue for another worker.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from huey import Huey
from huey.consumer import Consumer

from wavforge.audio.isolation import ConverterPool
from wavforge.capacity import usable_cpus
from wavforge.core import recovery, retention
from wavforge.core.context import Context
from wavforge.core.leases import process_identity

log = logging.getLogger(__name__)

# Idle consumers poll the queue; a short maximum delay keeps submit-to-start latency low.
POLL_MAX_DELAY = 0.1


class _EmbeddedConsumer(Consumer):  # type: ignore[misc]  # huey has no type hints
    """A consumer that leaves signal handling to its host process."""

    def _set_signal_handlers(self) -> None:
        return None


class Worker:
    def __init__(self, context: Context, huey: Huey, converters: ConverterPool) -> None:
        self._context = context
        self._converters = converters
        self._consumer = _EmbeddedConsumer(
            huey,
            workers=context.settings.worker_threads,
            worker_type="thread",
            periodic=False,
            initial_delay=0.02,
            max_delay=POLL_MAX_DELAY,
            check_worker_health=True,
            shutdown_timeout=context.settings.shutdown_grace_seconds,
        )
        self._stopping = threading.Event()
        self._sweeper = threading.Thread(target=self._sweep_forever, name="sweep", daemon=True)

    def start(self) -> None:
        self._converters.start()  # pre-started: a task never waits for an interpreter to boot
        self._consumer.start()
        self._sweeper.start()
        log.info(
            "%d conversion threads, on %d usable CPUs (WAVFORGE_WORKER_THREADS sets them)",
            self._context.settings.worker_threads,
            usable_cpus(),
        )

    def stop(self) -> None:
        """Finish or hand back running conversions; returns once no conversion runs here."""
        self._stopping.set()
        self._consumer.stop(graceful=True)  # waits up to the grace period
        if not self._busy():
            return
        handed = recovery.hand_back(self._context, process_identity())
        log.warning("grace period over: handed %d running conversions back", len(handed))
        # Each one stops at its next lease renewal, a couple of seconds away at most.
        deadline = time.monotonic() + self._context.settings.lease_seconds
        while self._busy() and time.monotonic() < deadline:
            time.sleep(0.05)

    def _busy(self) -> bool:
        return any(thread.is_alive() for _, thread in self._consumer.worker_threads)

    def _sweep_forever(self) -> None:
        """Sweep every ``sweep_seconds``; purge expired files every ``purge_seconds``.

        Several workers may purge at once: each deletion is idempotent and guarded.
        """
        settings = self._context.settings
        next_purge = time.monotonic()
        while True:
            _survive("sweep", recovery.sweep, self._context)
            if time.monotonic() >= next_purge:
                _survive("purge", retention.purge, self._context)
                next_purge = time.monotonic() + settings.purge_seconds
            if self._stopping.wait(min(settings.sweep_seconds, settings.purge_seconds)):
                return


def _survive(name: str, job: Callable[[Context], object], context: Context) -> None:
    """Run a periodic job; a failure is logged and the next period tries again."""
    try:
        job(context)
    except Exception:
        log.exception("%s failed; trying again later", name)
