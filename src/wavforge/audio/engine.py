"""Streaming conversion of any decodable audio file to 16-bit PCM WAV.

The promise of the service is that its WAV holds exactly the samples ``ffmpeg -i src -f s16le``
would produce, so the sample-format conversion below mirrors libswresample's scalar formulas
(round-half-even and saturate for float, arithmetic right shift for wider integers) instead of
using a resampler whose defaults (dither, filters) could drift between FFmpeg versions. Decoding
runs frame by frame with constant memory; gapless trimming (LAME/Xing, iTunSMPB, ...) is applied
by libavcodec itself through skip-samples side data, exactly as in the CLI.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from av.audio.frame import AudioFrame
from av.audio.stream import AudioStream
from av.container import InputContainer

from wavforge.audio.errors import ConversionFailed, UnsupportedAudio
from wavforge.audio.probe import (
    FrameReader,
    audio_stream,
    open_source,
    stream_duration,
)
from wavforge.audio.wavfile import WavWriter

__all__ = ["ConversionResult", "ProgressCallback", "convert", "to_s16le"]

ProgressCallback = Callable[[float], None]
PROGRESS_INTERVAL = 0.2  # seconds of wall time between progress reports
_INTERMEDIATE_CAP = 0.99  # 1.0 is reserved for "done", even when the duration was underestimated
_INT32_RANGE = 2.0**31  # |rounded sample| at or beyond this overflows FFmpeg's int conversion


@dataclass(frozen=True)
class ConversionResult:
    """What was written: enough to fill in task metadata without re-reading the WAV."""

    frames: int
    sample_rate: int
    channels: int
    bytes_written: int


def convert(
    src: Path,
    dst: Path,
    *,
    progress: ProgressCallback | None = None,
    progress_interval: float = PROGRESS_INTERVAL,
) -> ConversionResult:
    """Decode ``src`` and write it to ``dst`` as s16le WAV at the source rate and channel count.

    Raises ``UnsupportedAudio``/``ConversionFailed`` (both ``AudioError``) on bad input or I/O
    failure; an exception raised by ``progress`` propagates unchanged so a worker can abort a job
    it no longer owns. Whenever ``convert`` raises, ``dst`` has been removed.
    """
    with open_source(Path(src)) as container:
        stream = audio_stream(container)
        duration = stream_duration(container, stream)
        tracker = _Progress(progress, progress_interval, duration, container.size)
        with WavWriter(Path(dst)) as wav:
            frames = _pump(container, stream, wav, tracker)
            tracker.finish()
    return ConversionResult(frames, wav.sample_rate, wav.channels, wav.file_size)


def _pump(
    container: InputContainer, stream: AudioStream, wav: WavWriter, tracker: _Progress
) -> int:
    """Convert and append every decoded frame; returns the number of sample frames written."""
    written = 0
    reader = FrameReader(container, stream)
    with closing(iter(reader)) as decoded:
        for frame in decoded:
            rate, channels = frame.sample_rate, len(frame.layout.channels)
            if written == 0:
                wav.set_format(rate, channels)
            elif (rate, channels) != (wav.sample_rate, wav.channels):
                # ffmpeg would silently resample the rest; we refuse rather than alter samples.
                raise ConversionFailed("audio format changes part-way through the file")
            wav.write(to_s16le(frame))
            written += frame.samples
            tracker.update(written / rate, reader.position)
    if written == 0:
        raise UnsupportedAudio("audio could not be decoded (no audio frames)")
    return written


def to_s16le(frame: AudioFrame) -> bytes:
    """Return the frame as interleaved little-endian s16, bit-exact with libswresample."""
    name = frame.format.name
    convert_samples = _CONVERTERS.get(name.removesuffix("p"))
    if convert_samples is None:
        raise ConversionFailed(f"unsupported decoded sample format '{name}'")
    samples = convert_samples(frame.to_ndarray())
    # Planar arrays are (channels, n): transposing then serialising in C order interleaves them.
    # Packed arrays are already (1, n * channels) in interleaved order.
    interleaved = samples.T if frame.format.is_planar else samples
    return interleaved.astype("<i2", copy=False).tobytes()


def _flt_to_s16(data: np.ndarray) -> np.ndarray:
    """float32 -> s16 as FFmpeg's x86 SIMD path does: ``rint(x * 32768)`` saturated to int16.

    ``np.rint`` rounds half to even like ``cvtps2dq``/``lrintf``. Values that do not fit int32
    (and NaN/inf) come out of ``cvtps2dq`` as INT32_MIN, which saturates to -32768. Real decoders
    never produce such samples; only broken float PCM does, and handling them here also keeps
    numpy from warning about invalid casts.
    """
    scaled = data * np.float32(32768.0)
    np.rint(scaled, out=scaled)
    if not np.abs(scaled).max() < _INT32_RANGE:  # one reduction; NaN also fails the test
        scaled[~(np.abs(scaled) < _INT32_RANGE)] = -32768.0
    return np.clip(scaled, -32768, 32767, out=scaled).astype(np.int16)


def _dbl_to_s16(data: np.ndarray) -> np.ndarray:
    """float64 -> s16 as FFmpeg's scalar path: ``av_clip_int16(lrint(x * 32768))``.

    There is no SIMD variant for doubles. ``lrint`` yields a 64-bit long (LONG_MIN when out of
    range or NaN) that is truncated to ``int`` before clipping, so wild values wrap; mirroring
    that keeps even broken float64 PCM bit-exact.
    """
    scaled = np.rint(data * 32768.0)
    if np.abs(scaled).max() < _INT32_RANGE:
        return np.clip(scaled, -32768, 32767, out=scaled).astype(np.int16)
    as_long = np.where(np.abs(scaled) < 2.0**63, scaled, -(2.0**63)).astype(np.int64)
    return np.clip(as_long.astype(np.int32), -32768, 32767).astype(np.int16)


_CONVERTERS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "u8": lambda x: ((x.astype(np.int16) - 128) << 8).astype(np.int16),
    "s16": lambda x: x,
    "s32": lambda x: (x >> 16).astype(np.int16),
    "s64": lambda x: (x >> 48).astype(np.int16),
    "flt": _flt_to_s16,
    "dbl": _dbl_to_s16,
}


class _Progress:
    """Throttled progress reporting: at most one call per interval, then exactly one 1.0.

    The worker renews its lease from this callback, so it keeps being called at the interval
    even when no estimate is possible (the value then simply stays where it was).
    """

    def __init__(
        self,
        callback: ProgressCallback | None,
        interval: float,
        duration: float | None,
        file_size: int | None,
    ) -> None:
        self._callback = callback
        self._interval = interval
        self._duration = duration if duration and duration > 0 else None
        self._file_size = file_size if file_size and file_size > 0 else None
        self._last_call = time.monotonic()
        self._value = 0.0

    def update(self, seconds_done: float, byte_position: int) -> None:
        """Report progress if the interval has passed; values never decrease."""
        if self._callback is None:
            return
        now = time.monotonic()
        if now - self._last_call < self._interval:
            return
        self._last_call = now
        self._value = max(self._value, self._estimate(seconds_done, byte_position))
        self._callback(self._value)

    def finish(self) -> None:
        """Report completion; runs before the WAV is finalised so a raise still removes it."""
        if self._callback is not None:
            self._value = 1.0
            self._callback(1.0)

    def _estimate(self, seconds_done: float, byte_position: int) -> float:
        """Decoded time over duration, else bytes read over file size; below 1.0 until done."""
        if self._duration is not None:
            fraction = seconds_done / self._duration
        elif self._file_size is not None:
            fraction = byte_position / self._file_size
        else:
            fraction = self._value
        return min(fraction, _INTERMEDIATE_CAP)
