"""Decode one long file in several processes at once, with the same samples as one decoder.

Decoding is the slow part of a conversion and one decoder uses one core. An MP3 decoder's
state depends only on the last few frames (bit reservoir, IMDCT overlap, synthesis filter
history), so a second decoder that starts in the middle of the file — after decoding a few
packets and discarding their output — produces exactly the samples a single decoder would.
Each part demuxes the file from the start (cheap, and it keeps timestamps and gapless trimming
exact) and decodes only its own byte span. The parent decodes the first span straight into the
WAV; every other part writes its samples into the same file at the offset its first frame's
timestamp gives (the number of samples before it). When the parent is done, its sample count
must equal that offset exactly; if it does not (a damaged frame the decoder dropped, say), the
parts are thrown away and the file is decoded again in one piece, so a mismatch costs time,
never samples.

Only codecs whose decoder memory is known to be that short are split, only when the process
is single-threaded (``fork`` is unsafe otherwise), and the parts are ordinary child processes
that die with their parent.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from av.audio.frame import AudioFrame

from wavforge.audio.decoding import (
    WARMUP_PACKETS,
    Plan,
    Span,
    SpanResult,
    decode_span,
    frame_time,
)
from wavforge.audio.errors import UNEXPECTED_MESSAGE, AudioError, ConversionFailed, LimitExceeded
from wavforge.audio.messages import (
    Done,
    Failed,
    ProgressReport,
    progress_sender,
    receive,
    send,
)
from wavforge.audio.peaks import PeakMeter
from wavforge.audio.processes import die_with_parent, signal_name
from wavforge.audio.progress import PROGRESS_INTERVAL, Progress
from wavforge.audio.samples import Meter
from wavforge.audio.wavfile import WavWriter, write_all_at, write_failed
from wavforge.capacity import usable_cpus

if TYPE_CHECKING:  # multiprocessing is loaded only when a file is split (a short one never is)
    from multiprocessing.connection import Connection

__all__ = ["SPLITTABLE_CODECS", "decode_spans", "spans_for"]

# Decoders proven (tests compare against one sequential decode) to resynchronise exactly.
SPLITTABLE_CODECS = frozenset({"mp3"})
MIN_PART_SECONDS = 60.0  # shorter parts are not worth a process
# Demuxing a byte costs about this share of decoding and writing it (measured on 320 kb/s
# MP3); later parts demux everything before them, so they get fewer bytes to decode.
DEMUX_SHARE = 0.08


class Misaligned(ConversionFailed):
    """A part's samples did not land right after the previous part's; decode in one piece."""


def spans_for(src: Path, job: Plan) -> list[Span]:
    """Cut the file into byte spans that take about equally long, one per process."""
    size = src.stat().st_size
    parts = _parts(job)
    cuts = _balanced_cuts(size, parts)
    starts: list[int | None] = [None, *cuts]
    stops: list[int | None] = [*cuts, None]
    return [Span(i, a, b, size) for i, (a, b) in enumerate(zip(starts, stops, strict=True))]


def _balanced_cuts(size: int, parts: int) -> list[int]:
    """Byte offsets where part i's work, ``len(span) + DEMUX_SHARE * start``, is the same."""
    ends = [0.0]
    for _ in range(parts):
        ends.append(ends[-1] * (1 - DEMUX_SHARE) + 1)
    scale = size / ends[-1]
    return [int(end * scale) for end in ends[1:-1]]


def _parts(job: Plan) -> int:
    if job.source.codec not in SPLITTABLE_CODECS or job.resampling or not job.duration:
        return 1
    if job.output.dither:
        return 1  # the noise is drawn in sample order, by one decoder
    if job.start_time is None:
        return 1  # parts are placed by timestamp
    if not hasattr(os, "fork") or threading.active_count() > 1:
        return 1
    by_length = int(job.duration // MIN_PART_SECONDS)
    # The cores this process may run on (affinity, cgroup quota), not the machine's.
    return max(1, min(job.limits.parallelism, usable_cpus(), by_length))


def decode_spans(
    src: Path,
    job: Plan,
    spans: list[Span],
    wav: WavWriter,
    progress: Progress,
    meter: Meter | None = None,
    peaks: int | None = None,
) -> list[SpanResult]:
    """Decode every span into ``wav``, in this process and in one child per further span.

    ``meter`` sees the samples only of a decode in one piece: parts decoded elsewhere never
    pass through this process (the caller measures what they wrote instead). ``peaks`` (samples
    per pixel) asks every part for the waveform peaks of its own frames; the caller merges them.
    """
    if len(spans) > 1:
        try:
            return _decode_in_parallel(src, job, spans, wav, progress, peaks)
        except Misaligned:
            wav.rewind()
            progress.start_over(parts=1)
    whole = Span(size=spans[0].size)
    return [
        decode_span(src, job, whole, wav.write, progress, meter=meter, peaks=_peak_meter(peaks))
    ]


def _peak_meter(samples_per_pixel: int | None) -> PeakMeter | None:
    return None if samples_per_pixel is None else PeakMeter(samples_per_pixel)


def _decode_in_parallel(
    src: Path,
    job: Plan,
    spans: list[Span],
    wav: WavWriter,
    progress: Progress,
    peaks: int | None,
) -> list[SpanResult]:
    """The first span here, straight into ``wav``; the others in children, in place."""
    helpers: list[_Helper] = []
    try:
        # A failed job can leave a PyAV filter graph, with FFmpeg's threads, in garbage only
        # the cycle collector frees. A forked helper that collected it would wait forever for
        # threads it does not have (pthread_cond_destroy). Frozen, what exists now is never
        # collected in the helpers; this process unfreezes it at once and frees it as usual.
        # (A full collection before forking costs about 8 ms; freezing, microseconds.)
        gc.freeze()
        try:
            for span in spans[1:]:
                helpers.append(_Helper.start(src, job, span, wav, progress, peaks))
        finally:
            gc.unfreeze()

        def poll() -> None:
            for helper in helpers:
                helper.drain()

        progress.poll = poll
        results = [decode_span(src, job, spans[0], wav.write, progress, peaks=_peak_meter(peaks))]
        progress.part(0, 1.0)
        for helper in helpers:
            placed = helper.join()
            if placed.result.frames:
                if placed.frame != wav.frames:
                    raise Misaligned("parts do not join up")
                wav.adopt(placed.result.frames * job.output.block_align)
            results.append(placed.result)
        return results
    finally:
        progress.poll = lambda: None
        for helper in helpers:
            helper.stop()


@dataclass(frozen=True)
class _Placed:
    """A child's result and the output frame its samples start at."""

    frame: int | None
    result: SpanResult


class _Helper:
    """The parent's handle on one child decoding one span."""

    def __init__(self, pid: int, conn: Connection, index: int, progress: Progress):
        self.pid, self.index = pid, index
        self._conn, self._progress = conn, progress
        self._result: _Placed | None = None
        self._exited = False

    @classmethod
    def start(
        cls,
        src: Path,
        job: Plan,
        span: Span,
        wav: WavWriter,
        progress: Progress,
        peaks: int | None,
    ) -> _Helper:
        from multiprocessing import Pipe

        target = _Target(wav.path, wav.header_size, job.limits.max_output_bytes)
        reader, writer = Pipe(duplex=False)
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            reader.close()
            _child(src, job, span, target, writer, parent, peaks)
        writer.close()
        return cls(pid, reader, span.index, progress)

    def drain(self) -> None:
        """Take in the progress reports waiting in the pipe, without blocking."""
        while self._result is None and self._conn.poll():
            self._receive()

    def join(self) -> _Placed:
        """Wait for the child's result, passing its progress on meanwhile."""
        while self._result is None:
            if self._conn.poll(PROGRESS_INTERVAL):
                self._receive()
            if self._progress.due():
                self._progress.report()
        self._reap()
        return self._result

    def stop(self) -> None:
        """Kill the child if it still runs; safe to call twice."""
        if not self._exited:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            self._reap()
        self._conn.close()

    def _receive(self) -> None:
        try:
            message = receive(self._conn)
        except EOFError:
            raise ConversionFailed(f"a decoding process died ({self._reap()})") from None
        match message:
            case ProgressReport(fraction):
                self._progress.part(self.index, fraction)
            case Done(_Placed() as placed):
                self._result = placed
            case Failed():
                raise message.error()
            case _:
                raise ConversionFailed(UNEXPECTED_MESSAGE)

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
        super().__init__(progress_sender(conn), PROGRESS_INTERVAL)
        self._own = 0.0

    def part(self, index: int, fraction: float) -> None:
        self._own = fraction

    def report(self) -> None:
        super().part(0, self._own)
        super().report()


@dataclass(frozen=True)
class _Target:
    """Where a child writes: the WAV itself, after its header, within the output limit."""

    path: Path
    header_size: int
    max_output_bytes: int


def _child(
    src: Path,
    job: Plan,
    span: Span,
    target: _Target,
    conn: Connection,
    parent: int,
    peaks: int | None,
) -> NoReturn:
    """Body of a forked helper: decode the span into the WAV, report, and exit hard.

    ``os._exit`` skips the parent's inherited cleanup (buffered files, atexit hooks, test
    frameworks) that must run only once, in the parent.
    """
    code = 0
    try:
        die_with_parent(parent)
        fd = os.open(target.path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            sink = _PlacedSink(fd, job, target)
            meter = _peak_meter(peaks)

            def place(first: AudioFrame) -> None:
                sink.place(first)
                if meter is not None and sink.frame is not None:
                    meter.begin_at(sink.frame)

            result = decode_span(
                src,
                job,
                span,
                sink,
                _Relay(conn),
                warmup=WARMUP_PACKETS,
                on_start=place,
                peaks=meter,
            )
        finally:
            os.close(fd)
        send(conn, Done(_Placed(sink.frame, result)))
    except BaseException as error:
        with contextlib.suppress(OSError, ValueError):
            send(conn, Failed.of(error))
        code = 0 if isinstance(error, AudioError | MemoryError) else 1
    finally:
        os._exit(code)


class _PlacedSink:
    """A part's samples, written into the WAV where its first frame's timestamp puts them."""

    def __init__(self, fd: int, job: Plan, target: _Target) -> None:
        self._fd, self._job, self._target = fd, job, target
        self.frame: int | None = None  # output frame of the first sample, once known
        self._offset, self._limit = 0, target.max_output_bytes

    def place(self, first: AudioFrame) -> None:
        """Work out the offset from the frame's time relative to the file's first sample."""
        time, start = frame_time(first), self._job.start_time
        if time is None or start is None:
            raise Misaligned("a part has no timestamp")
        frames = (time - start) * self._job.source.sample_rate
        if frames.denominator != 1 or frames < 0:
            raise Misaligned("a part starts between samples")
        self.frame = int(frames)
        self._offset = self._target.header_size + self.frame * self._job.output.block_align

    def __call__(self, data: memoryview) -> None:
        assert self.frame is not None, "a part wrote before its first frame was placed"
        if self._offset + len(data) > self._limit:
            raise LimitExceeded(f"output would exceed the limit of {self._limit:,} bytes")
        try:
            write_all_at(self._fd, data, self._offset)
        except OSError as exc:
            raise write_failed(exc) from None
        self._offset += len(data)
