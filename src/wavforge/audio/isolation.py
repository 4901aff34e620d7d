"""Run conversions in killable child processes, so a hostile file cannot take the server down.

A crafted input can segfault the decoder (no ``except`` catches that) or run away with memory or
CPU. Every conversion therefore runs in a separate, pre-started process that the server can kill
at any moment. This module is the server's side of that arrangement; what runs in the child,
and the limits it puts on itself, is ``child``; what the two say over their pipe is
``messages``.

* The child is forked by multiprocessing's fork server, which has imported numpy, PyAV and the
  engine once (``zygote``): the server is threaded, and forking a threaded process can deadlock
  the copy, but the fork server has one thread. A child is ready in milliseconds instead of the
  0.3 s of a core a fresh interpreter takes, and it is reused for many conversions.
* The child lives in a session of its own, so killing it here with ``os.killpg`` also reaches
  any helper processes the engine forked.
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
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from multiprocessing.context import ForkServerProcess
from pathlib import Path
from typing import Any, TypeVar

from wavforge.audio.engine import ConversionResult
from wavforge.audio.errors import (
    MEMORY_MESSAGE,
    UNEXPECTED_MESSAGE,
    AudioError,
    ConversionFailed,
    LimitExceeded,
)
from wavforge.audio.messages import (
    EXIT_OUT_OF_MEMORY,
    ConvertJob,
    Done,
    Failed,
    Job,
    PeaksJob,
    ProbeJob,
    ProgressReport,
    Ready,
    Reply,
    receive,
    send,
)
from wavforge.audio.options import Limits
from wavforge.audio.peaks import Waveform
from wavforge.audio.processes import signal_name
from wavforge.audio.sources import AudioInfo

__all__ = ["CONVERT", "PROBE", "RECOMMENDED_MEMORY_BYTES", "ConverterPool", "IsolatedConverter"]

log = logging.getLogger(__name__)

ProgressCallback = Callable[[float], None]
T = TypeVar("T")

# Measured on Linux/x86-64 (Python 3.11, numpy, PyAV 18): a ready child maps ~205 MiB of
# address space (~55 MiB resident) and peaks at ~210 MiB after converting MP3/FLAC/24-bit WAV of
# up to three minutes; ~40 MiB more when it also imports the CLI and an OpenBLAS thread (see
# ``zygote``). 1 GiB leaves ample room for decoder buffers and engine changes, and still stops a
# runaway allocation long before it hurts the host. It bounds address space, not resident memory.
RECOMMENDED_MEMORY_BYTES = 1024 * 1024 * 1024

_STARTUP_SECONDS = 60.0  # a cold interpreter importing numpy and PyAV; generous for slow disks
_GROUP_EXIT_SECONDS = 0.5  # how long to wait for killed helper processes to disappear

_CPU_MESSAGE = "conversion exceeded its CPU time limit"

CONVERT, PROBE = "convert", "probe"  # what a child is for, in its process name

# The fork server imports this module once; every child is a fork of that interpreter.
_TEMPLATE = "wavforge.audio.zygote"

# The child's entry point. The process target is the builtin ``exec`` with this fixed snippet
# rather than a function of ``child``: pickling that function would import the engine (and
# numpy) into the server, which has no use for them.
_BOOTSTRAP = """\
from wavforge.audio import zygote
from wavforge.audio.child import main
main(*args, parent_pid=zygote.PID)
"""


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
        job = ConvertJob(src, dst, on_progress is not None, engine_kwargs)
        heartbeat = _Heartbeat(on_progress, self._heartbeat_seconds)
        return self._run(job, heartbeat, ConversionResult, output=dst)

    def measure_peaks(
        self,
        src: Path,
        *,
        on_progress: ProgressCallback | None = None,
        **engine_kwargs: Any,
    ) -> Waveform:
        """Run ``engine.measure_peaks(src, **engine_kwargs)`` in the child: the whole source is
        decoded, so it is held to a conversion's limits. Raises as ``convert`` does."""
        job = PeaksJob(src, on_progress is not None, engine_kwargs)
        return self._run(job, _Heartbeat(on_progress, self._heartbeat_seconds), Waveform)

    def probe(self, src: Path) -> AudioInfo:
        """Run ``sources.probe(src)`` in the child: opening a crafted container can take as
        much memory as decoding it (a header that claims millions of frames), so the API
        process never opens untrusted audio itself. Raises as ``convert`` does."""
        try:
            return self._run(ProbeJob(src), _Heartbeat(None, 1.0), AudioInfo)
        except LimitExceeded as error:  # the limits' messages speak of a conversion
            raise LimitExceeded(str(error).replace("conversion", "opening the file")) from None

    def _run(
        self, job: Job, heartbeat: _Heartbeat, answer: type[T], output: Path | None = None
    ) -> T:
        """Have a live child do ``job`` and return its result, which must be an ``answer``."""
        with self._lock:
            child = self._live_child()
            try:
                reply = self._exchange(child, job, heartbeat)
            except BaseException:
                # Killed, dead, over a limit or abandoned by the caller: the child's state is
                # unknown and it may still be writing, so it goes, and so does its output.
                self._discard_child(output)
                raise
            match reply:
                case Done(result) if isinstance(result, answer):
                    return result
                case Failed(retire=False):
                    raise reply.error()
                case Failed():  # e.g. after a MemoryError the interpreter is best replaced
                    self._discard_child(output)
                    raise reply.error()
                case _:  # a result of another kind: this is not the child we started
                    self._discard_child(output)
                    raise ConversionFailed(UNEXPECTED_MESSAGE)

    def _live_child(self) -> _Child:
        """Return a running child, replacing one that died while idle."""
        if self._closed:
            raise RuntimeError("converter is closed")
        if self._child is not None and not self._child.alive():
            self._discard_child()
        if self._child is None:
            self._child = _Child.spawn(self._memory_bytes, self._cpu_seconds, self._role)
        return self._child

    def _discard_child(self, output: Path | None = None) -> None:
        """Kill the child, and delete what it may have half written at ``output``."""
        child, self._child = self._child, None
        if child is not None:
            child.kill()
        if output is not None:
            _remove_outputs(output)

    def _exchange(self, child: _Child, job: Job, heartbeat: _Heartbeat) -> Done[Any] | Failed:
        """Send the job and relay progress until the child's final reply."""
        if not child.ready:
            not_started = ConversionFailed("the decoder process did not start in time")
            started = child.receive(heartbeat, _Deadline.after(_STARTUP_SECONDS, not_started))
            if not isinstance(started, Ready):
                raise ConversionFailed(UNEXPECTED_MESSAGE)
            child.ready = True
        try:
            send(child.conn, job)
        except OSError:
            raise child.death_error() from None
        deadline = self._wall_deadline()
        while True:
            match child.receive(heartbeat, deadline):
                case ProgressReport(fraction):
                    heartbeat.report(fraction)
                case Done() | Failed() as reply:
                    return reply
                case Ready():  # said once, at start; again means the child lost its place
                    raise ConversionFailed(UNEXPECTED_MESSAGE)

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

    def measure_peaks(
        self,
        src: Path,
        *,
        on_progress: ProgressCallback | None = None,
        **engine_kwargs: Any,
    ) -> Waveform:
        """Lease a converter and measure a source's peaks on it (see
        ``IsolatedConverter.measure_peaks``)."""
        with self.lease() as converter:
            return converter.measure_peaks(src, on_progress=on_progress, **engine_kwargs)

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
    """A converter process (a fork of the fork server) and the parent's end of its pipe."""

    def __init__(self, process: ForkServerProcess, conn: Connection) -> None:
        self.process = process
        self.conn = conn
        assert process.pid is not None, "started processes have a pid"
        self.pid: int = process.pid
        self.ready = False  # the child has imported everything and waits for jobs

    @classmethod
    def spawn(cls, memory_bytes: int | None, cpu_seconds: float | None, role: str) -> _Child:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([_TEMPLATE])
        ours, theirs = context.Pipe()
        args = (theirs, memory_bytes, cpu_seconds, role)
        process = context.Process(
            target=exec,
            args=(_BOOTSTRAP, {"args": args}),
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

    def receive(self, heartbeat: _Heartbeat, deadline: _Deadline) -> Reply:
        """Wait for the next message, beating the heart and watching the child meanwhile."""
        while True:
            deadline.enforce()  # first, so a chatty child cannot outrun its deadline
            if self.conn.poll(min(heartbeat.seconds_until_due(), deadline.seconds_left())):
                try:
                    return receive(self.conn)
                except (EOFError, OSError):
                    raise self.death_error() from None
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
        if code == EXIT_OUT_OF_MEMORY:
            return LimitExceeded(MEMORY_MESSAGE)
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
    """Starts every child from one long-lived thread, which serialises ``Process.start``: its
    bookkeeping is not thread-safe, and converters are restarted from any worker thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None

    def start(self, process: ForkServerProcess) -> None:
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
