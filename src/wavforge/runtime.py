"""Wiring: one function builds every part a process needs from its settings."""

from __future__ import annotations

from dataclasses import dataclass

from huey import Huey

from wavforge import outbound
from wavforge.audio.isolation import PROBE, ConverterPool
from wavforge.config import Settings
from wavforge.core import scratch
from wavforge.core.context import Context
from wavforge.core.link_key import link_key
from wavforge.core.maintenance import MaintenanceGate
from wavforge.core.rate_limits import RateLimiter
from wavforge.db import migrate
from wavforge.db.database import Database
from wavforge.dialects import DIALECTS
from wavforge.links import LinkSigner
from wavforge.observability import metrics
from wavforge.queue import HueyDispatcher, Worker, create_huey
from wavforge.storage import open_storage

PROBE_PROCESSES = 2  # one hostile file, held to its limits, cannot stall every import
PROBE_SECONDS = 30.0  # CPU and wall time to open a file and decode its first frame


@dataclass
class Runtime:
    context: Context
    huey: Huey
    dispatcher: HueyDispatcher

    converters: ConverterPool
    probers: ConverterPool

    def sweep_scratch(self) -> None:
        """Delete what processes that died here left staged (at start; the purge repeats it)."""
        settings = self.context.settings
        scratch.sweep(settings.scratch_dir, settings.scratch_idle_seconds)

    def worker(self) -> Worker:
        return Worker(self.context, self.huey, self.converters)

    def close(self) -> None:
        self.dispatcher.close()
        self.converters.close()
        self.probers.close()
        self.huey.storage.close()
        self.context.db.dispose()


def build_runtime(settings: Settings) -> Runtime:
    """Open the database (migrating it), storage and queue, and bind them into a context."""
    metrics.install()  # the core's events, counted from here on
    settings.scratch_dir.mkdir(parents=True, exist_ok=True)  # once here, not per request
    db = Database(settings.resolved_database_url)
    migrate.upgrade(db)
    huey = create_huey(settings)
    dispatcher = HueyDispatcher(huey)
    converters = ConverterPool(
        settings.worker_threads,
        memory_bytes=settings.convert_memory_bytes,
        cpu_seconds=settings.convert_cpu_seconds,
        wall_seconds=settings.convert_timeout_seconds,
    )
    # Imports probe in children of their own: a conversion never waits behind an import, nor
    # an import behind a conversion; each child starts when first needed.
    cpu = settings.convert_cpu_seconds  # None: the operator lifted the limit
    probers = ConverterPool(
        PROBE_PROCESSES,
        memory_bytes=settings.convert_memory_bytes,
        cpu_seconds=None if cpu is None else min(cpu, PROBE_SECONDS),
        wall_seconds=PROBE_SECONDS,
        role=PROBE,
    )
    context = Context(
        settings=settings,
        db=db,
        storage=open_storage(settings),
        links=LinkSigner(link_key(settings, db), settings.base_url),
        dispatch=dispatcher,
        post=outbound.post_json,
        converter=converters,
        prober=probers,
        dialects=DIALECTS,
        limiter=RateLimiter(settings.rate_limit, settings.rate_limit_storage),
        maintenance=MaintenanceGate(db),
    )
    dispatcher.bind(context)
    return Runtime(
        context=context, huey=huey, dispatcher=dispatcher, converters=converters, probers=probers
    )


def configure_logging(settings: Settings | None = None, level: str = "INFO") -> None:
    """Every log line of this process, uvicorn's included, in ``settings.log_format``: JSON
    objects one per line by default, each with the id of the request it serves.

    Without ``settings`` they are read from the environment, for callers that configure
    logging before they have built theirs.
    """
    from wavforge.observability import logs

    logs.configure((settings or Settings()).log_format, level)
