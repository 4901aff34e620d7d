"""Convert any decodable audio file to WAV: exact, streaming, within the operator's limits.

The promise of the service is that its WAV holds exactly the samples ``ffmpeg -i src`` would
produce in the same sample format: decoding is FFmpeg's own (through PyAV), gapless trimming
(LAME/Xing, iTunSMPB, Opus pre-skip, ...) is applied by libavcodec exactly as in the CLI, and
the sample conversion mirrors libswresample's formulas. Memory use does not depend on the
track's length. The worker (inside an isolated child process) and ``wavforge convert-file``
both call :func:`convert`. :func:`measure_peaks` runs the same decode without writing, for a
source's waveform.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from wavforge.audio.analysis import Analysis, distribution_warnings, file_sha256, to_dbfs
from wavforge.audio.decoding import Plan, Span, SpanResult, decode_span, plan
from wavforge.audio.errors import LimitExceeded, UnsupportedAudio
from wavforge.audio.loudness import Loudness, LoudnessMeter, measure_written
from wavforge.audio.options import Limits, OutputOptions
from wavforge.audio.peaks import PeakMeter, Peaks, Waveform, samples_per_pixel
from wavforge.audio.progress import PROGRESS_INTERVAL, Progress, ProgressCallback
from wavforge.audio.segments import decode_spans, spans_for
from wavforge.audio.sources import check_error_rate
from wavforge.audio.wavfile import WavWriter

__all__ = ["ConversionResult", "ProgressCallback", "convert", "measure_peaks"]


@dataclass(frozen=True)
class ConversionResult:
    """What was written: enough to fill in task metadata without re-reading the WAV."""

    frames: int
    sample_rate: int
    channels: int
    bytes_written: int
    analysis: Analysis
    peaks: Peaks | None = None  # the waveform's per-pixel extremes (``peaks=True``)

    @property
    def waveform(self) -> Waveform:
        return Waveform(self.peaks, self.sample_rate)


def convert(
    src: Path,
    dst: Path,
    *,
    options: OutputOptions = OutputOptions(),
    limits: Limits = Limits(),
    progress: ProgressCallback | None = None,
    progress_interval: float = PROGRESS_INTERVAL,
    checksum: bool = True,
    dither_seed: int = 0,
    loudness: bool = True,
    peaks: bool = True,
) -> ConversionResult:
    """Decode ``src`` and write it to ``dst`` as WAV in the format ``options`` resolve to.

    Raises ``UnsupportedAudio``, ``ConversionFailed`` or ``LimitExceeded`` (all
    ``AudioError``) with a message fit for an API client; an exception raised by ``progress``
    propagates unchanged so a worker can abort a job it no longer owns. Whenever ``convert``
    raises, ``dst`` (if it created it) and every temporary file are gone. ``dither_seed``
    keys the dither noise (when the options ask for dither): the service uses the task's.
    ``loudness=False`` skips the loudness meter (its figures are then None); ``peaks=False``
    skips the waveform peaks (``result.peaks`` is then None).
    """
    src, dst = Path(src), Path(dst)
    job = plan(src, options, limits, dither_seed)
    spans = spans_for(src, job)
    # Parts decoded in other processes are measured from the file afterwards.
    whole = len(spans) == 1
    meter = LoudnessMeter(job.output.sample_rate, job.layout) if loudness and whole else None
    tracker = Progress(progress, progress_interval, parts=len(spans))
    writer = WavWriter(
        dst,
        job.output,
        tags=job.tags,
        max_file_bytes=limits.max_output_bytes,
        rf64_threshold=limits.rf64_threshold_bytes,
        reserve_rf64=_might_need_rf64(job),
    )
    with writer:
        zoom = samples_per_pixel(_expected_frames(job), job.output.sample_rate) if peaks else None
        parts = decode_spans(src, job, spans, writer, tracker, meter.add if meter else None, zoom)
        total = _merge(parts)
        _check_total(job, total)
        measured = _loudness(meter, writer, job) if loudness else Loudness(None, None, None)
        tracker.finish()
    try:
        digest = file_sha256(dst) if checksum else None
    except OSError:
        dst.unlink(missing_ok=True)
        raise
    return ConversionResult(
        frames=total.frames,
        sample_rate=job.output.sample_rate,
        channels=job.output.channels,
        bytes_written=writer.file_size,
        analysis=_analysis(job, total, measured, digest),
        peaks=Peaks.merge([part.peaks for part in parts if part.peaks]) if peaks else None,
    )


def measure_peaks(
    src: Path,
    *,
    limits: Limits = Limits(),
    progress: ProgressCallback | None = None,
    progress_interval: float = PROGRESS_INTERVAL,
) -> Waveform:
    """The waveform peaks of the WAV a default conversion of ``src`` would write, writing none.

    The same plan, decode and sample conversion as :func:`convert` with no output options (the
    source's rate, channels and bit depth; 16 bits for a lossy source), so a source's peaks
    are exactly those of its default WAV. The samples go nowhere but to the meter; the limits
    and the corruption checks are the conversion's. Decoded in one piece: it runs beside
    conversions, whose cores a split decode would take.
    """
    src = Path(src)
    job = plan(src, OutputOptions(), limits)
    rate = job.output.sample_rate
    meter = PeakMeter(samples_per_pixel(_expected_frames(job), rate))
    tracker = Progress(progress, progress_interval)
    whole = Span(size=src.stat().st_size)
    total = decode_span(src, job, whole, _nowhere, tracker, peaks=meter)
    _check_total(job, total)
    tracker.finish()
    return Waveform(total.peaks, rate)


def _nowhere(_samples: memoryview) -> None:
    """The sink of a decode whose samples are only measured."""


def _expected_frames(job: Plan) -> int | None:
    return None if job.duration is None else round(job.duration * job.output.sample_rate)


def _might_need_rf64(job: Plan) -> bool:
    """Reserve room for a ds64 chunk when the header's duration says the WAV may get that big.

    Otherwise the header stays the classic minimal one; a file whose duration was unknown or
    misreported and still outgrows RIFF is rewritten once at the end (see ``WavWriter``).
    """
    expected = job.expected_bytes
    return expected is not None and expected * 2 >= job.limits.rf64_threshold_bytes


def _loudness(meter: LoudnessMeter | None, writer: WavWriter, job: Plan) -> Loudness:
    """The meter's figures; for parallel parts, read back, since no decoder here saw it all."""
    if meter is not None:
        return meter.result()
    return measure_written(
        writer.path, writer.header_size, writer.data_bytes, job.output, job.layout
    )


def _merge(parts: list[SpanResult]) -> SpanResult:
    total = SpanResult()
    for part in parts:
        total.frames += part.frames
        total.decoded += part.decoded
        total.failures += part.failures
        total.levels.merge(part.levels)
    return total


def _check_total(job: Plan, total: SpanResult) -> None:
    """Checks that need every part: corruption rate, empty output, total length."""
    check_error_rate(total.decoded, total.failures)
    if total.frames == 0:
        raise UnsupportedAudio("audio could not be decoded (no audio frames)")
    if total.frames > job.max_frames:
        raise LimitExceeded("audio is longer than the duration limit")


def _analysis(job: Plan, total: SpanResult, loudness: Loudness, digest: str | None) -> Analysis:
    out = job.output
    return Analysis(
        source_codec=job.source.codec,
        source_bit_rate=job.source.bit_rate,
        source_sample_rate=job.source.sample_rate,
        source_channels=job.source.channels,
        duration=round(total.frames / out.sample_rate, 6),
        frames=total.frames,
        output_encoding=out.encoding,
        output_sample_rate=out.sample_rate,
        output_channels=out.channels,
        output_bit_depth=out.bits,
        output_sample_format="float" if out.floating else "int",
        peak_dbfs=to_dbfs(total.levels.peak),
        clipped_samples=total.levels.clipped,
        sha256=digest,
        source_lossy=not job.source.lossless,
        integrated_loudness=loudness.integrated_lufs,
        loudness_range=loudness.range_lu,
        true_peak_dbtp=loudness.true_peak_dbtp,
        warnings=distribution_warnings(total.levels.clipped, loudness.true_peak_dbtp),
    )
