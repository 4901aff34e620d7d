"""Decode one byte span of a source into output samples: the loop every conversion runs.

A conversion is planned once (:func:`plan`: what the source is, what to write, whether the
limits allow it) and then decoded as one span or, for long files, as several spans in
parallel processes. Each span opens the file itself, so spans share nothing but the plan.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import av.error
import av.filter
import numpy as np
from av.audio.frame import AudioFrame

from wavforge.audio.errors import ConversionFailed, LimitExceeded
from wavforge.audio.formats import OutputFormat, SourceFormat, resolve_output
from wavforge.audio.options import Limits, OutputOptions
from wavforge.audio.peaks import PeakMeter, Peaks
from wavforge.audio.progress import Progress, estimate
from wavforge.audio.samples import Batcher, Levels, Meter, Sink
from wavforge.audio.sources import (
    FrameReader,
    audio_end,
    audio_stream,
    first_frame,
    open_source,
    read_tags,
    source_format,
    stream_duration,
)

__all__ = ["Plan", "Span", "SpanResult", "decode_span", "frame_time", "plan"]

# Packets decoded and discarded before a span so the decoder's state matches a read from the
# start; MP3 needs about three (bit reservoir, IMDCT overlap, synthesis filter history).
WARMUP_PACKETS = 32
# libswresample's windowed-sinc at a high setting (FFmpeg's soxr is not in PyAV's build).
_RESAMPLER = "filter_size=128:phase_shift=10:linear_interp=1:cutoff=0.97"


@dataclass(frozen=True)
class Plan:
    """Everything decided before the first sample is written."""

    source: SourceFormat
    decoded_format: str  # FFmpeg sample format name of decoded frames, e.g. "fltp"
    layout: str
    output: OutputFormat
    duration: float | None  # as the header claims; the real one is counted while decoding
    tags: dict[str, str]
    limits: Limits
    start_time: Fraction | None = None  # timestamp of the first decoded sample, in seconds
    end_time: Fraction | None = None  # where the container says the audio ends, in seconds
    dither_seed: int = 0  # keys the dither noise, so a task dithers the same way every time

    @property
    def resampling(self) -> bool:
        return self.output.sample_rate != self.source.sample_rate

    @property
    def max_frames(self) -> int:
        return int(self.limits.max_duration_seconds * self.output.sample_rate)

    @property
    def expected_bytes(self) -> int | None:
        """Data size the header's duration implies, or None when the duration is unknown."""
        return None if self.duration is None else self.output.data_bytes(self.duration)


@dataclass(frozen=True)
class Span:
    """Packets whose byte position lies in ``[start, stop)``; ``None`` leaves an end open."""

    index: int = 0
    start: int | None = None
    stop: int | None = None
    size: int = 0  # file size, for progress when the duration is unknown

    @property
    def bounds(self) -> tuple[int, int]:
        return (self.start or 0, self.size if self.stop is None else self.stop)


@dataclass
class SpanResult:
    """What one span produced, merged by the caller."""

    frames: int = 0  # output sample frames written
    decoded: int = 0  # decoder frames, for the error rate
    failures: int = 0  # packets the decoder rejected
    levels: Levels = field(default_factory=Levels)
    peaks: Peaks | None = None  # per-pixel extremes of what was written, when asked for


def plan(src: Path, options: OutputOptions, limits: Limits, dither_seed: int = 0) -> Plan:
    """Open the source, decode its first frame, decide the output and check the limits."""
    with open_source(src) as container:
        stream = audio_stream(container)
        frame = first_frame(container, stream)
        source = source_format(container, stream, frame)
        job = Plan(
            source=source,
            decoded_format=frame.format.name,
            layout=frame.layout.name,
            output=resolve_output(options, source),
            duration=stream_duration(container, stream),
            tags=read_tags(container, stream),
            limits=limits,
            start_time=frame_time(frame),
            end_time=audio_end(src, container, stream),
            dither_seed=dither_seed,
        )
    _check_claimed_size(job)
    return job


def _check_claimed_size(job: Plan) -> None:
    """Refuse before decoding what the header already says is too long or too big."""
    limits = job.limits
    if job.duration is not None and job.duration > limits.max_duration_seconds:
        raise LimitExceeded(
            f"audio is {_clock(job.duration)} long; the limit is "
            f"{_clock(limits.max_duration_seconds)}"
        )
    expected = job.expected_bytes
    if expected is not None and expected > limits.max_output_bytes:
        raise LimitExceeded(
            f"the WAV would be about {expected / 1e6:,.0f} MB; the limit is "
            f"{limits.max_output_bytes / 1e6:,.0f} MB"
        )


def frame_time(frame: AudioFrame) -> Fraction | None:
    """When the frame's first sample plays, in seconds, exactly; None if it has no timestamp."""
    if frame.pts is None or frame.time_base is None:
        return None
    return frame.pts * frame.time_base


def decode_span(
    src: Path,
    job: Plan,
    span: Span,
    sink: Sink,
    progress: Progress,
    *,
    warmup: int = 0,
    on_start: Callable[[AudioFrame], None] | None = None,
    meter: Meter | None = None,
    peaks: PeakMeter | None = None,
) -> SpanResult:
    """Decode the span, convert its samples and pass them to ``sink``.

    ``on_start`` sees the span's first decoded frame before any of its samples reach the sink,
    so a part decoded elsewhere can work out where in the WAV its samples belong.
    """
    result = SpanResult()
    out_rate = job.output.sample_rate
    max_frames = job.max_frames
    with open_source(src) as container:
        stream = audio_stream(container)
        reader = FrameReader(
            container, stream, start=span.start, stop=span.stop, warmup=warmup, check_errors=False
        )
        resampler = _resampler(job)
        decoded_format = resampler.format if resampler else job.decoded_format
        batcher = Batcher(
            decoded_format.removesuffix("p"),
            decoded_format.endswith("p"),
            job.output,
            sink,
            meter,
            job.dither_seed,
            peaks.add if peaks else None,
        )
        expected = (job.source.sample_rate, job.decoded_format, job.layout)
        for frame in reader:
            if (frame.sample_rate, frame.format.name, frame.layout.name) != expected:
                # ffmpeg would silently resample the rest; we refuse rather than alter samples.
                raise ConversionFailed("audio format changes part-way through the file")
            if on_start is not None:
                on_start(frame)
                on_start = None
            kept = _until(frame, job.end_time) if job.end_time is not None else frame
            if kept is None:
                continue
            for out in resampler.feed(kept) if resampler else (kept,):
                batcher.add(out)
                result.frames += out.samples
            if result.frames > max_frames:
                raise LimitExceeded(
                    f"audio is longer than the limit of {_clock(job.limits.max_duration_seconds)}"
                )
            if progress.due():
                # Time over duration for a whole file; bytes over the span for a part.
                whole = span.start is None and span.stop is None
                seconds = result.frames / out_rate
                done = estimate(
                    seconds, job.duration if whole else None, reader.position, span.bounds
                )
                progress.part(span.index, done)
                progress.report()
        for out in resampler.drain() if resampler else ():
            batcher.add(out)
            result.frames += out.samples
        batcher.finish()
    result.decoded, result.failures, result.levels = reader.frames, reader.failures, batcher.levels
    result.peaks = peaks.result() if peaks else None
    return result


def _until(frame: AudioFrame, end: Fraction) -> AudioFrame | None:
    """The part of ``frame`` that plays before ``end``: the encoder's padding is cut off."""
    start = frame_time(frame)
    if start is None:
        return frame
    keep = round((end - start) * frame.sample_rate)
    if keep >= frame.samples:
        return frame
    if keep <= 0:
        return None
    samples = frame.to_ndarray()
    if not frame.format.is_planar:
        keep *= len(frame.layout.channels)
    cut = AudioFrame.from_ndarray(
        samples[:, :keep].copy(), format=frame.format.name, layout=frame.layout.name
    )
    cut.sample_rate, cut.pts, cut.time_base = frame.sample_rate, frame.pts, frame.time_base
    return cut


def _resampler(job: Plan) -> _Resampler | _SoxrResampler | None:
    if not job.resampling:
        return None
    return _SoxrResampler(job) if job.output.resampler == "soxr" else _Resampler(job)


class _Resampler:
    """Change the sample rate with libswresample in an FFmpeg filter graph.

    The graph hands out planar doubles, so the same clamp-and-count conversion applies to
    resampled audio as to any other.
    """

    format = "dblp"

    def __init__(self, job: Plan) -> None:
        rate = job.source.sample_rate
        self._graph = graph = av.filter.Graph()
        source = graph.add_abuffer(
            format=job.decoded_format,
            sample_rate=rate,
            layout=job.layout,
            time_base=Fraction(1, rate),
        )
        resample = graph.add("aresample", f"osr={job.output.sample_rate}:{_RESAMPLER}")
        to_double = graph.add("aformat", "sample_fmts=dblp")
        sink = graph.add("abuffersink")
        source.link_to(resample)
        resample.link_to(to_double)
        to_double.link_to(sink)
        graph.configure()
        self._pts = 0

    def feed(self, frame: AudioFrame) -> list[AudioFrame]:
        """Push one decoded frame; return whatever the resampler has ready."""
        frame.pts, frame.time_base = self._pts, Fraction(1, frame.sample_rate)
        self._pts += frame.samples
        self._graph.push(frame)
        return self._pull()

    def drain(self) -> list[AudioFrame]:
        """Flush the filter's delay line at the end of the input."""
        self._graph.push(None)
        return self._pull()

    def _pull(self) -> list[AudioFrame]:
        frames: list[AudioFrame] = []
        while True:
            try:
                frame = self._graph.pull()
            except (BlockingIOError, av.error.EOFError):
                return frames
            if isinstance(frame, AudioFrame) and frame.samples:
                frames.append(frame)


class _SoxrResampler:
    """Very high quality resampling with libsoxr (``VHQ``), for the distribution preset.

    FFmpeg's soxr option is not in PyAV's build, so the python-soxr binding of the same
    library streams the samples; it hands out interleaved doubles.
    """

    format = "dbl"

    def __init__(self, job: Plan) -> None:
        import soxr  # loaded only when a preset asks for it

        self._layout, self._rate = job.layout, job.output.sample_rate
        self._channels = job.output.channels
        self._scale = _INT_FULL_SCALE.get(job.decoded_format.removesuffix("p"), 1.0)
        self._stream = soxr.ResampleStream(
            job.source.sample_rate, self._rate, self._channels, dtype="float64", quality="VHQ"
        )

    def feed(self, frame: AudioFrame) -> list[AudioFrame]:
        """Push one decoded frame; return whatever the resampler has ready."""
        samples = frame.to_ndarray()
        rows = samples.T if frame.format.is_planar else samples.reshape(-1, self._channels)
        if frame.format.name.startswith("u8"):
            rows = rows.astype(np.float64) - 128.0
        values = np.ascontiguousarray(rows, np.float64) / self._scale
        return self._frames(self._stream.resample_chunk(values))

    def drain(self) -> list[AudioFrame]:
        """Flush the filter's delay line at the end of the input."""
        empty = np.empty((0, self._channels), np.float64)
        return self._frames(self._stream.resample_chunk(empty, last=True))

    def _frames(self, out: np.ndarray) -> list[AudioFrame]:
        if not len(out):
            return []
        frame = AudioFrame.from_ndarray(out.reshape(1, -1), format="dbl", layout=self._layout)
        frame.sample_rate = self._rate
        return [frame]


_INT_FULL_SCALE = {"u8": 128.0, "s16": 32768.0, "s32": 2.0**31, "s64": 2.0**63}


def _clock(seconds: float) -> str:
    """``h:mm:ss`` for messages."""
    whole = int(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"
