"""Every metric wavforge exports, defined once: name, help, labels and buckets.

Label values come from small fixed sets (the core's outcome enums, HTTP methods, status codes and
route templates), never from accounts, keys, task ids or URLs: each distinct value is a
time series Prometheus keeps forever.

Counters and histograms only. In multi-process mode (``PROMETHEUS_MULTIPROC_DIR`` set, as
``wavforge serve`` does for several processes) each process writes its values to files in
that directory and a scrape adds them up, which is right for counters and histograms but
needs a per-gauge rule for gauges; the one gauge, the queue depth, is therefore computed at
scrape time from the database (``queue_depth``), not recorded in a process.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from wsgiref.simple_server import WSGIServer

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from wavforge.core import telemetry
from wavforge.core.telemetry import CallbackOutcome, ConversionOutcome, PurgeKind

MULTIPROCESS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
# prometheus-client reads the variable once, when it is imported, to choose where values
# live; the scrape must take the same decision, so it reads it at the same moment.
MULTIPROCESS_DIR = os.environ.get(MULTIPROCESS_VARIABLE) or None

# A request takes a millisecond (status poll) to seconds (an upload, a long download).
REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
# A conversion takes a fraction of a second (a short track) to minutes (hours of audio).
CONVERSION_BUCKETS = (0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600)


HTTP_REQUEST_DURATION = Histogram(
    "wavforge_http_request_duration_seconds",
    "Time from a request's arrival until its answer was handed to the server, by method, "
    "route template (`unmatched` when no route took it) and status code.",
    ("method", "route", "status"),
    buckets=REQUEST_BUCKETS,
)
CONVERSIONS = Counter(
    "wavforge_conversions_total",
    "Conversion runs by how they ended; counted once their outcome is committed.",
    ("outcome",),
)
CONVERSION_DURATION = Histogram(
    "wavforge_conversion_duration_seconds",
    "Wall time of a conversion run, from claiming the task to recording its end.",
    ("outcome",),
    buckets=CONVERSION_BUCKETS,
)
CALLBACK_ATTEMPTS = Counter(
    "wavforge_callback_attempts_total",
    "Callback POSTs made, by what followed; counted once the attempt is recorded.",
    ("outcome",),
)
CREDITS_CHARGED = Counter(
    "wavforge_credits_charged_total",
    "Credits taken for accepted conversions (committed charges only).",
)
CREDITS_REFUNDED = Counter(
    "wavforge_credits_refunded_total",
    "Credits given back for failed conversions (committed refunds only).",
)
PURGED = Counter(
    "wavforge_purged_total",
    "What retention and orphan clean-up deleted, by kind.",
    ("kind",),
)


def _zeroes() -> None:
    """Every series exists from the start at 0, so the first event shows in ``rate()``."""
    for outcome in ConversionOutcome:
        CONVERSIONS.labels(outcome.value)
        CONVERSION_DURATION.labels(outcome.value)
    for delivery in CallbackOutcome:
        CALLBACK_ATTEMPTS.labels(delivery.value)
    for kind in PurgeKind:
        PURGED.labels(kind.value)


_zeroes()


class PrometheusTelemetry:
    """The core's events as this module's counters (:mod:`wavforge.core.telemetry`)."""

    def conversion_finished(self, outcome: ConversionOutcome, seconds: float) -> None:
        CONVERSIONS.labels(outcome.value).inc()
        CONVERSION_DURATION.labels(outcome.value).observe(seconds)

    def callback_attempted(self, outcome: CallbackOutcome) -> None:
        CALLBACK_ATTEMPTS.labels(outcome.value).inc()

    def credits_charged(self, amount: int) -> None:
        CREDITS_CHARGED.inc(amount)

    def credits_refunded(self, amount: int) -> None:
        CREDITS_REFUNDED.inc(amount)

    def purged(self, kind: PurgeKind, count: int) -> None:
        if count:
            PURGED.labels(kind.value).inc(count)


def install() -> None:
    """Count this process's core events in the counters above."""
    telemetry.install(PrometheusTelemetry())


def scrape_registry(*extra: Collector) -> CollectorRegistry:
    """What one scrape reports: this process's metrics (or, in multi-process mode, those of
    every process sharing the directory) plus ``extra`` collectors.

    Built per scrape, so each app adds its own collectors without registering anything in
    the process-wide registry, where a second app (tests build several) would collide.
    """
    registry = CollectorRegistry(auto_describe=False)
    if MULTIPROCESS_DIR:
        MultiProcessCollector(registry, path=MULTIPROCESS_DIR)  # type: ignore[no-untyped-call]
    else:
        registry.register(_Forward(REGISTRY))
    for collector in extra:
        registry.register(collector)
    return registry


class _Forward(Collector):
    """Another registry's metrics, as one collector of a per-scrape registry."""

    def __init__(self, source: CollectorRegistry) -> None:
        self._source = source

    def collect(self) -> Iterable[Metric]:
        return self._source.collect()


def prepare_multiprocess_dir(path: Path) -> Path:
    """Create the directory of multi-process metrics, or empty it of a previous run's files.

    Call it in the supervising process before any child starts: values left by processes of
    an earlier run would otherwise be added to this run's. Only prometheus-client's ``*.db``
    files are removed, in case an operator pointed the variable at a shared directory.
    """
    path.mkdir(parents=True, exist_ok=True)
    for stale in _value_files(path):
        stale.unlink(missing_ok=True)
    return path


def _value_files(path: Path) -> Iterable[Path]:
    return (entry for entry in path.glob("*.db") if entry.is_file())


def serve_metrics(host: str, port: int) -> WSGIServer:
    """Serve this process's metrics on ``host:port`` from a daemon thread (a lone worker).

    Returns the server, whose ``shutdown()`` stops it.
    """
    server, _thread = start_http_server(port, addr=host, registry=scrape_registry())
    return server
