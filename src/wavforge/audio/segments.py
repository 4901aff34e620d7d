"""Decode one long file in several processes at once, with the same samples as one decoder.

Decoding is the slow part of a conversion and one decoder uses one core. An MP3 decoder's
state depends only on the last few frames (bit reservoir, IMDCT overlap, synthesis filter
history), so a second decoder that starts in the middle of the file — after decoding a few
packets and discarding their output — produces exactly the samples a single decoder would.
Each part demuxes the file from the start (cheap, and it keeps timestamps and gapless trimming
exact), decodes only its own byte span, and writes raw samples to its own file; the parent
decodes the first span straight into the WAV and then appends the others inside the kernel.

Only codecs whose decoder memory is known to be that short are split, only when the process
is single-threaded (``fork`` is unsafe otherwise), and the parts are ordinary child processes
that die with their parent.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from multiprocessing import Pipe
from multiprocessing.connection import Connection
from pathlib import Path
from typing import BinaryIO, NoReturn

from wavforge.audio.decoding import WARMUP_PACKETS, Plan, Span, SpanResult, decode_span
from wavforge.audio.errors import (
    UNEXPECTED_MESSAGE,
    AudioError,
    ConversionFailed,
    LimitExceeded,
    rebuild,
)
from wavforge.audio.processes import die_with_parent, signal_name
from wavforge.audio.progress import PROGRESS_INTERVAL, Progress
from wavforge.audio.wavfile import WavWriter, write_all, write_failed

__all__ = ["SPLITTABLE_CODECS", "decode_spans", "part_path", "spans_for"]

# Decoders proven (tests compare against one sequential decode) to resynchronise exactly.
SPLITTABLE_CODECS = frozenset({"mp3"})
MIN_PART_SECONDS = 60.0  # shorter parts are not worth a process


def spans_for(src: Path, job: Plan) -> list[Span]:
    """Cut the file into byte spans of roughly equal length, one per process."""
    size = src.stat().st_size
    parts = _parts(job)
    cuts = [size * i // parts for i in range(1, parts)]
    starts: list[int | None] = [None, *cuts]
    stops: list[int | None] = [*cuts, None]
    return [Span(i, a, b, size) for i, (a, b) in enumerate(zip(starts, stops, strict=True))]


def _parts(job: Plan) -> int:
    if job.source.codec not in SPLITTABLE_CODECS or job.resampling or not job.duration:
        return 1
    if not hasattr(os, "fork") or threading.active_count() > 1:
        return 1
    by_length = int(job.duration // MIN_PART_SECONDS)
    return max(1, min(job.limits.parallelism, os.cpu_count() or 1, by_length))


def part_path(target: Path, index: int) -> Path:
    """Where part ``index`` of ``target`` is written; next to it, so appending stays cheap."""
    return target.with_name(f"{target.name}.seg{index}")


def decode_spans(
    src: Path, job: Plan, spans: list[Span], wav: WavWriter, progress: Progress
) -> list[SpanResult]:
    """Decode every span into ``wav``, in this process and in one child per further span."""
    if len(spans) == 1:
        return [decode_span(src, job, spans[0], wav.write, progress)]
    helpers: list[_Helper] = []
    try:
        for span in spans[1:]:
            helpers.append(_Helper.start(src, job, span, part_path(wav.path, span.index), progress))

        def poll() -> None:
            for helper in helpers:
                helper.drain()

        progress.poll = poll
        results = [decode_span(src, job, spans[0], wav.write, progress)]
        progress.part(0, 1.0)
        for helper in helpers:
            results.append(helper.join())
            wav.append_file(helper.path)
        return results
    finally:
        for helper in helpers:
            helper.stop()


class _Helper:
    """The parent's handle on one child decoding one span."""

    def __init__(self, pid: int, conn: Connection, path: Path, index: int, progress: Progress):
        self.pid, self.path, self.index = pid, path, index
        self._conn, self._progress = conn, progress
        self._result: SpanResult | None = None
        self._exited = False

    @classmethod
    def start(cls, src: Path, job: Plan, span: Span, path: Path, progress: Progress) -> _Helper:
        reader, writer = Pipe(duplex=False)
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            reader.close()
            _child(src, job, span, path, writer, parent)
        writer.close()
        return cls(pid, reader, path, span.index, progress)

    def drain(self) -> None:
        """Take in the progress reports waiting in the pipe, without blocking."""
        while self._result is None and self._conn.poll():
            self._receive()

    def join(self) -> SpanResult:
        """Wait for the child's result, passing its progress on meanwhile."""
        while self._result is None:
            if self._conn.poll(PROGRESS_INTERVAL):
                self._receive()
            if self._progress.due():
                self._progress.report()
        self._reap()
        return self._result

    def stop(self) -> None:
        """Kill the child if it still runs, and remove its file; safe to call twice."""
        if not self._exited:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            self._reap()
        self._conn.close()
        self.path.unlink(missing_ok=True)

    def _receive(self) -> None:
        try:
            message = self._conn.recv()
        except EOFError:
            raise ConversionFailed(f"a decoding process died ({self._reap()})") from None
        kind = message[0]
        if kind == "progress":
            self._progress.part(self.index, message[1])
        elif kind == "done":
            self._result = message[1]
        else:
            raise rebuild(message[1], message[2])

    def _reap(self) -> str:
        """Collect the child's exit status; describe it for an error message."""
        if self._exited:
            return "already reaped"
        _, status = os.waitpid(self.pid, 0)
        self._exited = True
        if os.WIFSIGNALED(status):
            return f"signal {signal_name(os.WTERMSIG(status))}"
        return f"exit code {os.waitstatus_to_exitcode(status)}"


class _Relay(Progress):
    """A child's progress: its own fraction, sent up the pipe."""

    def __init__(self, conn: Connection) -> None:
        super().__init__(lambda fraction: conn.send(("progress", fraction)), PROGRESS_INTERVAL)
        self._own = 0.0

    def part(self, index: int, fraction: float) -> None:
        self._own = fraction

    def report(self) -> None:
        super().part(0, self._own)
        super().report()


def _child(src: Path, job: Plan, span: Span, path: Path, conn: Connection, parent: int) -> NoReturn:
    """Body of a forked helper: decode the span into ``path``, report, and exit hard.

    ``os._exit`` skips the parent's inherited cleanup (buffered files, atexit hooks, test
    frameworks) that must run only once, in the parent.
    """
    code = 0
    try:
        die_with_parent(parent)
        with open(path, "wb", buffering=0) as out:
            sink = _LimitedSink(out, job.limits.max_output_bytes)
            result = decode_span(src, job, span, sink, _Relay(conn), warmup=WARMUP_PACKETS)
        conn.send(("done", result))
    except AudioError as exc:
        _send(conn, ("error", type(exc), str(exc)))
    except MemoryError:
        _send(conn, ("error", LimitExceeded, "conversion exceeded its memory limit"))
    except BaseException:
        _send(conn, ("error", ConversionFailed, UNEXPECTED_MESSAGE))
        code = 1
    finally:
        os._exit(code)


def _send(conn: Connection, message: tuple[object, ...]) -> None:
    with contextlib.suppress(OSError, ValueError):
        conn.send(message)


class _LimitedSink:
    """Raw sample output for a part, refusing to grow past the operator's limit."""

    def __init__(self, out: BinaryIO, limit: int) -> None:
        self._out, self._limit, self._written = out, limit, 0

    def __call__(self, data: memoryview) -> None:
        self._written += len(data)
        if self._written > self._limit:
            raise LimitExceeded(f"output would exceed the limit of {self._limit:,} bytes")
        try:
            write_all(self._out, data)
        except OSError as exc:
            raise write_failed(exc) from None
