"""How ``wavforge serve`` lays out its processes.

One API process (the default) runs the API and, unless told otherwise, the worker's threads
in one interpreter: nothing to supervise, and the per-key rate limit counts exactly in memory.

Python runs one request at a time per interpreter, so on a machine with more cores than that
``api_processes`` > 1 starts several. This process then supervises them and one worker
process beside them (the worker must not be multiplied with the API), and starts again any
that dies. Each API process runs uvicorn on a listening socket of its own on the shared port
(``SO_REUSEPORT``), so the kernel balances connections between them. Every child starts from
a fresh interpreter and reads its settings from the environment, which this process has
already migrated the database for. Metrics go
through prometheus-client's multi-process directory, so whichever API process answers a
scrape reports the counters of all of them.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import threading
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIServer

import uvicorn

from wavforge import __version__, presence
from wavforge.config import Settings
from wavforge.http.protocol import with_header_timeout
from wavforge.observability import logs, metrics

log = logging.getLogger(__name__)

APP_FACTORY = "wavforge.web:app_from_environment"
METRICS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
# After the grace period a handed-back conversion stops at its next lease renewal.
STOP_MARGIN_SECONDS = 10.0
RESTART_PAUSE_SECONDS = 1.0
SIGNAL_LOOK_SECONDS = 0.5  # see until_asked_to_stop
BACKLOG = 2048  # uvicorn's own default


def serve(settings: Settings, *, with_worker: bool) -> None:
    """Run the API (and the worker, ``with_worker``) until SIGINT or SIGTERM.

    The port is taken before anything else starts, so a second ``serve`` on a port in use
    fails at once, without having started a worker that would take tasks from the first.
    """
    if settings.api_processes == 1:
        _serve_in_one_process(settings, with_worker=with_worker)
    else:
        _serve_in_several(settings, with_worker=with_worker)


def _serve_in_one_process(settings: Settings, *, with_worker: bool) -> None:
    from wavforge.runtime import build_runtime
    from wavforge.web import create_app

    listening = _taken_port(_listen_address(settings), settings)
    api = create_app(build_runtime(settings), with_worker=with_worker)
    banner(settings)
    with presence.running(settings):
        uvicorn.Server(uvicorn.Config(api, **_uvicorn_options(settings))).run(sockets=[listening])


def banner(settings: Settings) -> None:
    """Where to go next, once, at start-up."""
    url = settings.base_url
    log.info(
        "wavforge %s on %s: console %s/console, API docs %s/docs, data in %s; "
        "make a key with: wavforge keys create --name you --credits 100",
        __version__, url, url, url, settings.data_dir,
    )  # fmt: skip


def _serve_in_several(settings: Settings, *, with_worker: bool) -> None:
    _refuse_taken_port(_listen_address(settings), settings)
    _prepare_shared_state(settings)
    if settings.rate_limit_storage.startswith("memory"):
        log.warning(
            "%d API processes count the per-key rate limit each on their own; set "
            "WAVFORGE_REDIS_URL to share the counters",
            settings.api_processes,
        )
    api_stop = settings.shutdown_grace_seconds + STOP_MARGIN_SECONDS
    children = [
        Supervised(_run_api_process, f"wavforge-api-{number}", api_stop)
        for number in range(settings.api_processes)
    ]
    if with_worker:
        worker_stop = settings.shutdown_grace_seconds + settings.lease_seconds + STOP_MARGIN_SECONDS
        children.append(Supervised(run_worker, "wavforge-worker", worker_stop))
    asked_to_stop = stop_signals()
    for child in children:
        child.start()
    banner(settings)
    log.info("%d API processes", settings.api_processes)
    with presence.running(settings):
        until_asked_to_stop(asked_to_stop)
    for child in children:
        child.terminate()
    for child in children:
        child.wait()


def _run_api_process() -> None:
    """One API process of several, on a socket of its own (settings from the environment)."""
    settings = Settings()
    config = uvicorn.Config(APP_FACTORY, factory=True, **_uvicorn_options(settings))
    listening = _own_socket(_listen_address(settings))
    uvicorn.Server(config).run(sockets=[listening])


def _uvicorn_options(settings: Settings) -> dict[str, Any]:
    """How uvicorn serves, in one process or several.

    No access lines (the request metrics count every request), and no proxy headers:
    wavforge builds every URL from ``WAVFORGE_PUBLIC_URL`` and limits by API key, never by
    client address, so uvicorn's ``X-Forwarded-*`` handling would only cost time.

    The standard library's event loop rather than uvloop, which uvicorn picks when it is
    installed: under 64 keep-alive connections uvloop left about one request in a hundred
    waiting 200 to 400 ms while the rest took 25 (status polls on one process: p99 362 ms
    against 33 ms on asyncio, for 3 % more requests per second). A tail like that is what a
    client's timeout meets.
    """
    return {
        "host": settings.host,
        "port": settings.port,
        "loop": "asyncio",
        "log_config": logs.logging_config(settings.log_format),
        "access_log": False,
        "proxy_headers": False,
        "http": with_header_timeout(settings.header_timeout_seconds),
    }


Address = tuple[socket.AddressFamily, int, tuple[Any, ...]]  # family, protocol, address


def _listen_address(settings: Settings) -> Address:
    family, _, protocol, _, address = socket.getaddrinfo(
        settings.host, settings.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    return family, protocol, address


def _own_socket(address: Address) -> socket.socket:
    """This API process's own listening socket on the shared port (``SO_REUSEPORT``).

    The kernel spreads new connections over the processes' sockets by a hash of their
    addresses. On one shared socket, whichever process woke first accepted a whole burst of
    connections: under 16 keep-alive connections, one process of two sometimes served all
    of them, at half the throughput.
    """
    family, protocol, where = address
    # The protocol named, not 0: asyncio sets TCP_NODELAY only on sockets that say they are
    # TCP, and without it every answer waited 40 ms for the client's delayed ACK.
    listening = socket.socket(family, socket.SOCK_STREAM, protocol)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    listening.bind(where)
    listening.listen(BACKLOG)
    return listening


class PortTaken(RuntimeError):
    """The port ``serve`` should listen on is in use."""


def _refuse_taken_port(address: Address, settings: Settings) -> None:
    """Fail at once if the port is in use, even by a server that shares it too.

    ``SO_REUSEPORT`` would let the API processes join another server's sockets on the port
    (a stale wavforge, say), and the two would split the traffic; a plain bind fails on any
    socket there.
    """
    _taken_port(address, settings).close()


def _taken_port(address: Address, settings: Settings) -> socket.socket:
    """The listening socket, bound and listening, or ``PortTaken``."""
    family, protocol, where = address
    # The protocol named, not 0: see _own_socket.
    listening = socket.socket(family, socket.SOCK_STREAM, protocol)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listening.bind(where)
        listening.listen(BACKLOG)
    except OSError as error:
        listening.close()
        where_text = f"{settings.host}:{settings.port}"
        raise PortTaken(f"cannot listen on {where_text}: {error.strerror}") from None
    return listening


def _prepare_shared_state(settings: Settings) -> None:
    """Migrate once and create the link key here, so the children never race to do it.

    The children inherit the environment, so the host and port given on the command line
    and the metrics directory travel with it.
    """
    from wavforge.runtime import build_runtime

    build_runtime(settings).close()
    os.environ["WAVFORGE_HOST"], os.environ["WAVFORGE_PORT"] = settings.host, str(settings.port)
    if METRICS_DIR_VARIABLE not in os.environ:
        os.environ[METRICS_DIR_VARIABLE] = str(settings.data_dir / "metrics")
    metrics.prepare_multiprocess_dir(Path(os.environ[METRICS_DIR_VARIABLE]))


def stop_signals() -> threading.Event:
    """An event that SIGINT or SIGTERM sets (handlers installed now, in the main thread)."""
    asked = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: asked.set())
    return asked


def until_asked_to_stop(asked: threading.Event) -> None:
    """Block the main thread until ``asked`` is set, looking again every half second.

    Why not ``asked.wait()``: the kernel hands a process's signal to any thread that does
    not block it, and Python runs the handler only in the main thread, when that thread
    next runs. A main thread asleep in a wait with no timeout is woken only if the signal
    happened to land on it; when it lands on a converter or consumer thread, the handler
    never runs. Seen under load: a ``wavforge worker`` went on for over 30 s after its
    SIGTERM, until it was killed. A bounded wait lets the main thread run the handler
    within ``SIGNAL_LOOK_SECONDS`` wherever the signal landed.
    """
    while not asked.wait(SIGNAL_LOOK_SECONDS):
        pass


class Supervised:
    """A child process of ``serve``, started again if it dies while the service runs."""

    def __init__(self, target: Callable[[], None], name: str, stop_timeout: float) -> None:
        self._target, self._name, self._stop_timeout = target, name, stop_timeout
        self._stopping = threading.Event()
        self._lock = threading.Lock()  # no restart may slip in once terminate() has begun
        self._process: BaseProcess | None = None
        self._watcher = threading.Thread(target=self._watch, name=f"{name}-watch", daemon=True)

    def start(self) -> None:
        self._process = self._spawn()
        self._watcher.start()

    def terminate(self) -> None:
        """SIGTERM: the child stops gracefully; :meth:`wait` waits for it."""
        with self._lock:
            self._stopping.set()
            process = self._process
        if process is not None and process.pid is not None and process.is_alive():
            os.kill(process.pid, signal.SIGTERM)

    def wait(self) -> None:
        process = self._process
        if process is None or process.pid is None:
            return
        process.join(self._stop_timeout)
        if process.is_alive():
            log.error("%s did not stop in time; killing it", self._name)
            process.kill()
            process.join()

    def _watch(self) -> None:
        while not self._stopping.is_set():
            assert self._process is not None
            self._process.join()
            if self._stopping.wait(RESTART_PAUSE_SECONDS):
                return
            with self._lock:
                if self._stopping.is_set():
                    return
                log.error("%s exited with %s; starting another", self._name, self._process.exitcode)
                self._process = self._spawn()

    def _spawn(self) -> BaseProcess:
        process = multiprocessing.get_context("spawn").Process(
            target=self._target, name=self._name, daemon=False
        )
        process.start()
        return process


class MetricsPortTaken(RuntimeError):
    """``WAVFORGE_METRICS_PORT`` cannot be listened on."""


def run_worker(settings: Settings | None = None) -> None:
    """A worker until SIGINT or SIGTERM: ``wavforge worker``, and the worker process of a
    ``serve`` with several API processes (settings from the environment)."""
    from wavforge.runtime import build_runtime, configure_logging

    settings = settings or Settings()
    configure_logging(settings)
    exporter = _metrics_exporter(settings)
    runtime = build_runtime(settings)
    runtime.sweep_scratch()
    running = runtime.worker()
    asked_to_stop = stop_signals()
    running.start()
    log.info("wavforge %s worker running", __version__)
    until_asked_to_stop(asked_to_stop)
    running.stop()
    if exporter:
        exporter.shutdown()
    runtime.close()


def _metrics_exporter(settings: Settings) -> WSGIServer | None:
    """A worker alone has no API to be scraped through: with a metrics port it serves its own."""
    port = settings.metrics_port
    if port is None:
        return None
    try:
        return metrics.serve_metrics(settings.host, port)
    except OSError as error:
        where = f"{settings.host}:{port}"
        raise MetricsPortTaken(f"cannot serve metrics on {where}: {error.strerror}") from None
