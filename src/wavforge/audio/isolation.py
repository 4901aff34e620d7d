"""Run conversions in killable child processes, so a hostile file cannot take the server down.

A crafted input can segfault the decoder (no ``except`` catches that) or run away with memory or
CPU. Every conversion therefore runs in a separate, pre-started process that the server can kill
at any moment:

* The child is started with the ``spawn`` method: the server is threaded, and forking a threaded
  process can deadlock the copy. It is started once and reused for many conversions, so the cost
  of a fresh interpreter (numpy, PyAV) is paid once, not per task.
* At start the child moves into its own session (so ``os.killpg`` also reaches any helper
  processes the engine forks), disables core dumps, caps its address space (``RLIMIT_AS``) and,
  on Linux, asks to be SIGKILLed when the server dies. Before each task it re-arms ``RLIMIT_CPU``
  to "CPU used so far + budget", which turns a process-wide limit into a per-task one.
* The parent waits on the pipe with a timeout, so it can enforce the wall-clock limit and call
  ``on_progress`` at least every heartbeat even while the child is silent (the worker renews its
  lease from that callback). Whenever the child is killed or dies, the partial output is removed.

Isolation here is against crashes and resource exhaustion, not against code execution: the child
runs as the same user as the server.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import multiprocessing
import os
import resource
import signal
import tempfile
import threading
import time
import traceback
import wave
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnProcess
from pathlib import Path
from typing import Any

from wavforge.audio import engine, sources
from wavforge.audio.engine import ConversionResult
from wavforge.audio.errors import (
    UNEXPECTED_MESSAGE,
    AudioError,
    ConversionFailed,
    LimitExceeded,
    rebuild,
)
from wavforge.audio.options import Limits
from wavforge.audio.processes import die_with_parent, signal_name
from wavforge.audio.sources import AudioInfo

__all__ = ["CONVERT", "PROBE", "RECOMMENDED_MEMORY_BYTES", "ConverterPool", "IsolatedConverter"]

log = logging.getLogger(__name__)

ProgressCallback = Callable[[float], None]

# Measured on Linux/x86-64 (Python 3.11, numpy, PyAV 18): a ready child maps ~205 MiB of
# address space (~55 MiB resident) and peaks at ~210 MiB after converting MP3/FLAC/24-bit WAV of
# up to three minutes; ~40 MiB more when it also imports the CLI and an OpenBLAS thread (see
# _BOOTSTRAP). 1 GiB leaves ample room for decoder buffers and engine changes, and still stops a
# runaway allocation long before it hurts the host. It bounds address space, not resident memory.
RECOMMENDED_MEMORY_BYTES = 1024 * 1024 * 1024

_STARTUP_SECONDS = 60.0  # a cold interpreter importing numpy and PyAV; generous for slow disks
_GROUP_EXIT_SECONDS = 0.5  # how long to wait for killed helper processes to disappear
_EXIT_OUT_OF_MEMORY = 86  # the child's exit code when it could not even report a MemoryError

_MEMORY_MESSAGE = "conversion exceeded its memory limit"
_CPU_MESSAGE = "conversion exceeded its CPU time limit"

# BLAS/OpenMP libraries start worker threads as soon as numpy loads. The engine may fork, which is
# only safe from a single-threaded process, so these must be set before numpy is imported.
_SINGLE_THREAD_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

# The child's entry point. Unpickling a function of this module would import ``wavforge.audio``
# (and with it numpy) before any of our code runs, too late to set the variables above. So the
# process target is the builtin ``exec`` with this fixed snippet, which sets them first.
CONVERT, PROBE = "convert", "probe"  # what a child is for, in its process name

_BOOTSTRAP = """\
import os
os.environ.update(env)
from wavforge.audio.isolation import _child_main
_child_main(*args)
"""


# --------------------------------------------------------------------------------------------
# Parent side
# --------------------------------------------------------------------------------------------


class IsolatedConverter:
    """One pre-started child process that runs conversions one at a time.

    A converter is meant to be used by one thread at a time; a lock still serialises calls so
    that ``close`` from another thread waits for a running conversion instead of racing it.
    """

    def __init__(
        self,
        *,
        memory_bytes: int | None,
        cpu_seconds: float | None,
        wall_seconds: float | None,
        heartbeat_seconds: float = 1.0,
        role: str = CONVERT,
    ) -> None:
        if heartbeat_seconds <= 0:
            raise ValueError("heartbeat_seconds must be positive")
        self._memory_bytes = memory_bytes
        self._cpu_seconds = cpu_seconds
        self._wall_seconds = wall_seconds
        self._heartbeat_seconds = heartbeat_seconds
        self._role = role
        self._lock = threading.Lock()
        self._child: _Child | None = None
        self._closed = False

    @property
    def pid(self) -> int | None:
        """The current child's pid, or None before the first start and after ``close``."""
        child = self._child
        return None if child is None else child.pid

    def start(self) -> None:
        """Start the child now, so the first conversion does not pay for its imports."""
        with self._lock:
            self._live_child()

    def close(self) -> None:
        """Kill the child (and its helpers); further use raises ``RuntimeError``."""
        with self._lock:
            self._closed = True
            self._discard_child()

    def convert(
        self,
        src: Path,
        dst: Path,
        *,
        on_progress: ProgressCallback | None = None,
        **engine_kwargs: Any,
    ) -> ConversionResult:
        """Run ``engine.convert(src, dst, **engine_kwargs)`` in the child and return its result.

        Raises the engine's ``AudioError`` as the child raised it, ``LimitExceeded`` when a
        limit killed the conversion, ``ConversionFailed`` when the child died, and whatever
        ``on_progress`` raised, unchanged. Whenever it raises, no output is left at ``dst``.
        """
        with self._lock:
            child = self._live_child()
            job = ("job", src, dst, on_progress is not None, engine_kwargs)
            heartbeat = _Heartbeat(on_progress, self._heartbeat_seconds)
            try:
                reply = self._exchange(child, job, heartbeat)
            except BaseException:
                # Killed, dead, over a limit or abandoned by the caller: the child's state is
                # unknown and it may still be writing, so it goes, and so does its output.
                self._discard_child()
                _remove_outputs(dst)
                raise
            if reply[0] == "done":
                result: ConversionResult = reply[1]
                return result
            _, error_type, message, retire = reply
            if retire:  # e.g. after a MemoryError the interpreter is best replaced
                self._discard_child()
                _remove_outputs(dst)
            raise rebuild(error_type, message)

    def probe(self, src: Path) -> AudioInfo:
        """Run ``sources.probe(src)`` in the child: opening a crafted container can take as
        much memory as decoding it (a header that claims millions of frames), so the API
        process never opens untrusted audio itself. Raises as ``convert`` does."""
        try:
            return self._probe(src)
        except LimitExceeded as error:  # the limits' messages speak of a conversion
            raise LimitExceeded(str(error).replace("conversion", "opening the file")) from None

    def _probe(self, src: Path) -> AudioInfo:
        with self._lock:
            child = self._live_child()
            try:
                reply = self._exchange(child, ("probe", src), _Heartbeat(None, 1.0))
            except BaseException:
                self._discard_child()
                raise
            if reply[0] == "done":
                info: AudioInfo = reply[1]
                return info
            _, error_type, message, retire = reply
            if retire:
                self._discard_child()
            raise rebuild(error_type, message)

    def _live_child(self) -> _Child:
        """Return a running child, replacing one that died while idle."""
        if self._closed:
            raise RuntimeError("converter is closed")
        if self._child is not None and not self._child.alive():
            self._discard_child()
        if self._child is None:
            self._child = _Child.spawn(self._memory_bytes, self._cpu_seconds, self._role)
        return self._child

    def _discard_child(self) -> None:
        child, self._child = self._child, None
        if child is not None:
            child.kill()

    def _exchange(
        self, child: _Child, job: tuple[Any, ...], heartbeat: _Heartbeat
    ) -> tuple[Any, ...]:
        """Send the job and relay progress until the child's final reply."""
        if not child.ready:
            not_started = ConversionFailed("the decoder process did not start in time")
            child.receive(heartbeat, _Deadline.after(_STARTUP_SECONDS, not_started))  # "ready"
            child.ready = True
        try:
            child.conn.send(job)
        except OSError:
            raise child.death_error() from None
        deadline = self._wall_deadline()
        while True:
            reply = child.receive(heartbeat, deadline)
            if reply[0] != "progress":
                return reply
            heartbeat.report(reply[1])

    def _wall_deadline(self) -> _Deadline:
        """The wall-clock limit of one job, counted from when the child received it."""
        wall = self._wall_seconds
        if wall is None:
            return _Deadline.never()
        return _Deadline.after(wall, LimitExceeded(f"conversion took longer than {wall:g} seconds"))


class ConverterPool:
    """Up to ``size`` IsolatedConverters shared by worker threads.

    Free converters are handed out last-in first-out, so a lightly loaded server keeps reusing
    the same warm child. Closing the pool kills idle children at once; a converter that is busy
    is closed when its lease ends, so a running conversion is never cut short by shutdown.
    """

    def __init__(self, size: int, **converter_kwargs: Any) -> None:
        if size < 1:
            raise ValueError("pool size must be at least 1")
        self._converters = [IsolatedConverter(**converter_kwargs) for _ in range(size)]
        self._idle = list(self._converters)
        self._available = threading.Condition()
        self._closed = False

    def start(self) -> None:
        """Start every child. Only the fork/exec is serial; the children import in parallel."""
        with self._available:
            idle = list(self._idle)
        for converter in idle:
            converter.start()

    @contextlib.contextmanager
    def lease(self) -> Iterator[IsolatedConverter]:
        """Borrow a converter for the duration of the block, waiting until one is free."""
        converter = self._acquire()
        try:
            yield converter
        finally:
            self._release(converter)

    def convert(
        self,
        src: Path,
        dst: Path,
        *,
        on_progress: ProgressCallback | None = None,
        **engine_kwargs: Any,
    ) -> ConversionResult:
        """Lease a converter and run one conversion on it (see ``IsolatedConverter.convert``).

        A long MP3 is split across processes only while the pool's other converters are idle:
        when conversions already keep the cores busy, splitting one adds work, not speed.
        """
        with self.lease() as converter:
            limits = engine_kwargs.get("limits")
            if isinstance(limits, Limits) and self._others_busy():
                engine_kwargs["limits"] = dataclasses.replace(limits, parallelism=1)
            return converter.convert(src, dst, on_progress=on_progress, **engine_kwargs)

    def probe(self, src: Path) -> AudioInfo:
        """Lease a converter and probe ``src`` in its child (see ``IsolatedConverter.probe``)."""
        with self.lease() as converter:
            return converter.probe(src)

    def _others_busy(self) -> bool:
        with self._available:
            return len(self._converters) - len(self._idle) > 1

    def close(self) -> None:
        """Stop idle children now and busy ones when released; waiting leases fail."""
        with self._available:
            self._closed = True
            idle, self._idle = self._idle, []
            self._available.notify_all()
        for converter in idle:
            converter.close()

    def pids(self) -> list[int]:
        """Pids of the children currently running (tests use them to signal a child)."""
        return [pid for pid in (c.pid for c in self._converters) if pid is not None]

    def _acquire(self) -> IsolatedConverter:
        with self._available:
            while not self._idle and not self._closed:
                self._available.wait()
            if self._closed:
                raise RuntimeError("converter pool is closed")
            return self._idle.pop()

    def _release(self, converter: IsolatedConverter) -> None:
        with self._available:
            if not self._closed:
                self._idle.append(converter)
                self._available.notify()
                return
        converter.close()


class _Heartbeat:
    """Calls ``on_progress`` with each new fraction, and again whenever a heartbeat passes.

    The worker renews its lease from the callback, so it must keep being called while the child
    is silent (a slow decoder, a huge header, a child stopped by a debugger).
    """

    def __init__(self, callback: ProgressCallback | None, interval: float) -> None:
        self._callback = callback
        self._interval = interval
        self._fraction = 0.0
        self._due = time.monotonic() + interval

    def report(self, fraction: float) -> None:
        self._fraction = fraction
        self._due = time.monotonic() + self._interval
        if self._callback is not None:
            self._callback(fraction)

    def beat_if_due(self) -> None:
        if time.monotonic() >= self._due:
            self.report(self._fraction)

    def seconds_until_due(self) -> float:
        return max(0.0, self._due - time.monotonic())


class _Deadline:
    """A moment after which waiting stops with ``error``."""

    def __init__(self, at: float | None, error: AudioError | None) -> None:
        self._at = at
        self._error = error

    @classmethod
    def after(cls, seconds: float, error: AudioError) -> _Deadline:
        return cls(time.monotonic() + seconds, error)

    @classmethod
    def never(cls) -> _Deadline:
        return cls(None, None)

    def seconds_left(self) -> float:
        return math.inf if self._at is None else max(0.0, self._at - time.monotonic())

    def enforce(self) -> None:
        if self._error is not None and self._at is not None and time.monotonic() >= self._at:
            raise self._error


class _Child:
    """A spawned converter process and the parent's end of its pipe."""

    def __init__(self, process: SpawnProcess, conn: Connection) -> None:
        self.process = process
        self.conn = conn
        assert process.pid is not None, "started processes have a pid"
        self.pid: int = process.pid
        self.ready = False  # the child has imported everything and waits for jobs

    @classmethod
    def spawn(cls, memory_bytes: int | None, cpu_seconds: float | None, role: str) -> _Child:
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()
        args = (theirs, memory_bytes, cpu_seconds, os.getpid(), role)
        process = context.Process(
            target=exec,
            args=(_BOOTSTRAP, {"env": _SINGLE_THREAD_ENV, "args": args}),
            name="wavforge-converter",
            daemon=True,  # multiprocessing's atexit hook then terminates it with the server
        )
        try:
            _SPAWNER.start(process)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()  # the child has its own copy; ours would hide its EOF
        return cls(process, ours)

    def alive(self) -> bool:
        """Whether the child still runs (reaps it if it has exited)."""
        return self.process.exitcode is None

    def receive(self, heartbeat: _Heartbeat, deadline: _Deadline) -> tuple[Any, ...]:
        """Wait for the next message, beating the heart and watching the child meanwhile."""
        while True:
            deadline.enforce()  # first, so a chatty child cannot outrun its deadline
            if self.conn.poll(min(heartbeat.seconds_until_due(), deadline.seconds_left())):
                try:
                    message: tuple[Any, ...] = self.conn.recv()
                except (EOFError, OSError):
                    raise self.death_error() from None
                return message
            # Helper processes share the pipe, so a dead child does not always close it.
            if not self.alive():
                raise self.death_error()
            heartbeat.beat_if_due()

    def death_error(self) -> ConversionFailed:
        """The error for a child that vanished: a limit if a limit killed it, else how it died."""
        self.process.join(timeout=1.0)
        code = self.process.exitcode
        if code is None:
            return ConversionFailed("the decoder process stopped responding")
        if code == -signal.SIGXCPU:
            return LimitExceeded(_CPU_MESSAGE)
        if code == _EXIT_OUT_OF_MEMORY:
            return LimitExceeded(_MEMORY_MESSAGE)
        if code < 0:
            return ConversionFailed(f"the decoder process died (signal {signal_name(-code)})")
        return ConversionFailed(f"the decoder process died (exit code {code})")

    def kill(self) -> None:
        """SIGKILL the child's whole process group, reap it and release every handle."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            # Before its setsid() the child is in no group of its own: ESRCH, not the server's.
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(ValueError):
            self.process.kill()  # in case it had not reached setsid() yet
        self.process.join()
        _await_group_exit(self.pid)
        self.conn.close()
        self.process.close()


class _Spawner:
    """Starts every child from one long-lived thread.

    ``PR_SET_PDEATHSIG`` fires when the *thread* that forked the child exits, not the process.
    Converters are restarted from worker threads, which may come and go; forking from a thread
    that lives as long as the server keeps a child from dying with the worker that restarted it.
    The single thread also serialises ``Process.start``, whose bookkeeping is not thread-safe.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None

    def start(self, process: SpawnProcess) -> None:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(1, thread_name_prefix="wavforge-spawner")
            executor = self._executor
        executor.submit(process.start).result()

    def stop(self) -> None:
        """End the thread; the next start makes a new one. Children it started get SIGKILL."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)


_SPAWNER = _Spawner()


def stop_spawner() -> None:
    """Leave this process without the spawner thread, for code that must fork it alone.

    The engine splits a long decode across forked helpers only in a process with no other
    thread; an embedding program (or a test) that used a converter pool calls this first.
    Every converter child still running is killed with the thread, so close pools before.
    """
    _SPAWNER.stop()


def _remove_outputs(dst: Path) -> None:
    """Delete a partial WAV (the engine's helper processes write into that file only)."""
    try:
        dst.unlink(missing_ok=True)
    except OSError as error:  # the path may carry a task id or secret: log only the cause
        log.warning("could not remove a partial conversion output: %s", error.strerror)


def _await_group_exit(pgid: int) -> None:
    """Give SIGKILLed helpers a moment to die, so none creates a file after the cleanup."""
    give_up = time.monotonic() + _GROUP_EXIT_SECONDS
    while _group_running(pgid) and time.monotonic() < give_up:
        time.sleep(0.005)


def _group_running(pgid: int) -> bool:
    """Whether a process of the group can still run.

    Killed helpers are orphans that only init reaps, and some container inits never do, so a
    group can consist of zombies for a long time; on Linux those are skipped via ``/proc``.
    """
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    if not os.path.isdir("/proc"):
        return True
    with os.scandir("/proc") as entries:  # closed even when we return half-way
        for entry in entries:
            if not entry.name.isdigit():
                continue
            try:
                stat = Path(entry.path, "stat").read_text()
            except OSError:  # exited meanwhile
                continue
            state, _, group = stat.rsplit(")", 1)[1].split()[:3]  # after "pid (comm)"
            if int(group) == pgid and state not in ("Z", "X"):
                return True
    return False


# --------------------------------------------------------------------------------------------
# Child side
# --------------------------------------------------------------------------------------------


def _child_main(
    conn: Connection,
    memory_bytes: int | None,
    cpu_seconds: float | None,
    parent_pid: int,
    role: str = CONVERT,
) -> None:
    """Entry point of the child: isolate, limit, announce readiness, then serve jobs."""
    _name_process(role)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s wavforge.isolation[%(process)d]: %(message)s",
    )
    os.setsid()
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    die_with_parent(parent_pid)
    _warm_up()
    if memory_bytes is not None:
        _limit_address_space(memory_bytes)
    conn.send(("ready",))
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


def _warm_up() -> None:
    """Convert a tiny generated WAV once, before the memory limit applies.

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
            conn.send(reply)
        except MemoryError:
            os._exit(_EXIT_OUT_OF_MEMORY)
        except OSError:  # the server is gone
            return
        if reply[0] == "error" and reply[3]:
            return


def _run_job(conn: Connection, job: tuple[Any, ...], cpu_seconds: float | None) -> tuple[Any, ...]:
    """Convert or probe one file; returns ``("done", result)`` or
    ``("error", type, message, retire)``."""
    _arm_cpu_limit(cpu_seconds)
    try:
        if job[0] == "probe":
            return ("done", sources.probe(job[1]))
        _, src, dst, wants_progress, engine_kwargs = job
        progress = _progress_sender(conn) if wants_progress else None
        return ("done", engine.convert(src, dst, progress=progress, **engine_kwargs))
    except Exception as error:
        return _error_reply(error)


def _error_reply(error: Exception) -> tuple[Any, ...]:
    """Turn an exception into a reply the parent can re-raise, without leaking server paths."""
    if _caused_by_memory(error):
        return ("error", LimitExceeded, _MEMORY_MESSAGE, True)
    if isinstance(error, AudioError):
        return ("error", type(error), str(error), False)
    # Log where it happened but not the message: it may contain the (secret-bearing) path.
    frames = "".join(traceback.format_tb(error.__traceback__))
    log.error("%s: %s\n%s", UNEXPECTED_MESSAGE, type(error).__name__, frames)
    return ("error", ConversionFailed, UNEXPECTED_MESSAGE, False)


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


def _progress_sender(conn: Connection) -> ProgressCallback:
    """The engine's progress callback: forward each (already throttled) fraction."""

    def send(fraction: float) -> None:
        conn.send(("progress", fraction))

    return send
