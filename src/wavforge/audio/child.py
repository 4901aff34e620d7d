"""The converter child: what runs inside the process that ``isolation`` starts and kills.

Everything here assumes the worst about the file it is handed. At start the child moves into
its own session (so the parent's ``os.killpg`` also reaches any helper processes the engine
forks), disables core dumps, caps its address space (``RLIMIT_AS``) and, on Linux, asks to be
SIGKILLed when the server dies. Before each job it re-arms ``RLIMIT_CPU`` to "CPU used so far
+ budget", which turns a process-wide limit into a per-job one.

Replies never carry an exception object or a message the engine did not write for clients:
an unexpected error's text may contain the (secret-bearing) path of the file, so it is logged
here without it and sent up as a generic failure.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import resource
import tempfile
import traceback
import wave
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from wavforge.audio import engine, sources
from wavforge.audio.errors import UNEXPECTED_MESSAGE, AudioError
from wavforge.audio.messages import (
    EXIT_OUT_OF_MEMORY,
    ConvertJob,
    Done,
    Failed,
    PeaksJob,
    ProbeJob,
    Ready,
    progress_sender,
    send,
)
from wavforge.audio.processes import die_with_parent

__all__ = ["main"]

log = logging.getLogger(__name__)


def main(
    conn: Connection,
    memory_bytes: int | None,
    cpu_seconds: float | None,
    role: str,
    *,
    parent_pid: int,
) -> None:
    """Isolate, limit, announce readiness, then serve jobs until the parent closes the pipe.

    The child is a fork of the fork server (``zygote``), which has warmed the engine up.
    ``parent_pid`` is that server's: it exits when the process that uses the converters does,
    and the child follows it.
    """
    _name_process(role)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s wavforge.isolation[%(process)d]: %(message)s",
    )
    os.setsid()
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    die_with_parent(parent_pid)
    if memory_bytes is not None:
        _limit_address_space(memory_bytes)
    send(conn, Ready())
    _serve(conn, cpu_seconds)


def _name_process(role: str) -> None:
    """``wf-convert`` or ``wf-probe`` in ``ps`` and ``/proc/<pid>/comm``: an operator (and a
    test) tells the children apart."""
    with contextlib.suppress(OSError):
        Path("/proc/self/comm").write_text(f"wf-{role}"[:15])


def _limit_address_space(memory_bytes: int) -> None:
    """Cap the address space, hard limit included, so not even a subverted child can lift it."""
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = memory_bytes if hard == resource.RLIM_INFINITY else min(memory_bytes, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def warm_up() -> None:
    """Convert a tiny generated WAV once, before any memory limit applies: the fork server
    does it (``zygote``), so every child starts warm.

    PyAV and the engine import some modules and initialise some tables on first use. Under a
    tight ``RLIMIT_AS`` such a late import fails to map its shared object and surfaces as an
    ImportError in some innocent task; done here, it also keeps that latency out of the first
    conversion.
    """
    try:
        with tempfile.TemporaryDirectory(prefix="wavforge-warmup-") as scratch:
            src = Path(scratch) / "warmup.wav"
            with wave.open(str(src), "wb") as wav:
                wav.setnchannels(2)
                wav.setsampwidth(2)
                wav.setframerate(44100)
                wav.writeframes(bytes(range(256)) * 64)  # 4096 frames of a sawtooth
            engine.convert(src, Path(scratch) / "warmup-out.wav")
    except Exception as error:  # a broken engine is reported by the real tasks, not here
        log.warning("warm-up conversion failed: %s", type(error).__name__)


def _serve(conn: Connection, cpu_seconds: float | None) -> None:
    """Run jobs until the server closes the pipe; exit after a reply that asks to retire."""
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        reply = _run_job(conn, job, cpu_seconds)
        try:
            send(conn, reply)
        except MemoryError:
            os._exit(EXIT_OUT_OF_MEMORY)
        except OSError:  # the server is gone
            return
        if isinstance(reply, Failed) and reply.retire:
            return


def _run_job(conn: Connection, job: object, cpu_seconds: float | None) -> Done[Any] | Failed:
    """Probe, convert or measure one file; every exception becomes a ``Failed`` reply."""
    _arm_cpu_limit(cpu_seconds)
    try:
        match job:
            case ProbeJob(src):
                return Done(sources.probe(src))
            case ConvertJob(src, dst, wants_progress, engine_kwargs):
                progress = progress_sender(conn) if wants_progress else None
                return Done(engine.convert(src, dst, progress=progress, **engine_kwargs))
            case PeaksJob(src, wants_progress, engine_kwargs):
                progress = progress_sender(conn) if wants_progress else None
                return Done(engine.measure_peaks(src, progress=progress, **engine_kwargs))
            case _:
                raise TypeError(f"not a job: {type(job).__name__}")
    except Exception as error:
        return _error_reply(error)


def _error_reply(error: Exception) -> Failed:
    """A memory failure retires the child; anything the engine did not raise is logged here
    (where it happened, not the message, which may contain the path) and sent up anonymous."""
    if _caused_by_memory(error):
        return Failed.out_of_memory(retire=True)
    if not isinstance(error, AudioError):
        frames = "".join(traceback.format_tb(error.__traceback__))
        log.error("%s: %s\n%s", UNEXPECTED_MESSAGE, type(error).__name__, frames)
    return Failed.of(error)


def _caused_by_memory(error: BaseException | None) -> bool:
    """True if ``error`` is a MemoryError or was raised while handling one.

    The engine translates PyAV errors, ENOMEM included, into its own ``AudioError`` types; the
    original stays reachable as the cause or context.
    """
    seen = 0
    while error is not None and seen < 10:
        if isinstance(error, MemoryError):
            return True
        error, seen = error.__cause__ or error.__context__, seen + 1
    return False


def _arm_cpu_limit(cpu_seconds: float | None) -> None:
    """Allow this task ``cpu_seconds`` on top of what the child has used so far.

    RLIMIT_CPU counts the whole life of the process, so re-arming it before each task makes it a
    per-task budget. The hard limit stays where it was; crossing the soft one sends SIGXCPU,
    whose default action kills the child.
    """
    if cpu_seconds is None:
        return
    usage = resource.getrusage(resource.RUSAGE_SELF)
    soft = math.ceil(usage.ru_utime + usage.ru_stime + cpu_seconds)
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))
