"""A worker: Huey consumer threads plus the sweep, in this process.

``wavforge serve`` starts one beside the API; ``wavforge worker`` runs one alone.
"""

from __future__ import annotations

import logging
import threading

from huey import Huey
from huey.consumer import Consumer

from wavforge.audio.isolation import ConverterPool
from wavforge.core import recovery
from wavforge.core.context import Context

log = logging.getLogger(__name__)

# Idle consumers poll the queue; a short maximum delay keeps submit-to-start latency low.
POLL_MAX_DELAY = 0.1


class _EmbeddedConsumer(Consumer):
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
        )
        self._stopping = threading.Event()
        self._sweeper = threading.Thread(target=self._sweep_forever, name="sweep", daemon=True)

    def start(self) -> None:
        self._converters.start()  # pre-started: a task never waits for an interpreter to boot
        self._consumer.start()
        self._sweeper.start()

    def stop(self, graceful: bool = True) -> None:
        self._stopping.set()
        self._consumer.stop(graceful=graceful)

    def wait(self) -> None:
        """Block until :meth:`stop` is called (``wavforge worker``)."""
        self._stopping.wait()

    def _sweep_forever(self) -> None:
        while True:
            try:
                recovery.sweep(self._context)
            except Exception:
                log.exception("sweep failed; trying again later")
            if self._stopping.wait(self._context.settings.sweep_seconds):
                return
