"""Decoded frames to output samples, bit-exact with FFmpeg's libswresample.

The promise is that the WAV holds exactly what ``ffmpeg -i src -c:a pcm_<fmt>`` would write, so
every conversion below mirrors swresample's formulas (``audioconvert.c`` and its x86 SIMD
twins): round half to even and saturate from float, shift between integer widths, scale by a
power of two into float. Frames are copied into a batch and converted a batch at a time: numpy
is fast on long arrays, and the per-frame Python cost (an MP3 frame is only 1152 samples)
would otherwise dominate. While converting, the batch is also measured: the peak level and
the number of samples that had to be clamped to full scale (integer output never wraps).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from av.audio.frame import AudioFrame

from wavforge.audio.errors import ConversionFailed
from wavforge.audio.formats import OutputFormat

__all__ = ["BATCH_FRAMES", "Batcher", "Levels", "Meter", "Observer", "Sink", "TpdfNoise"]

BATCH_FRAMES = 1 << 15  # sample frames per batch: ~256 KiB of stereo float, fits in L2
_DTYPES = {
    "u8": np.uint8,
    "s16": np.int16,
    "s32": np.int32,
    "s64": np.int64,
    "flt": np.float32,
    "dbl": np.float64,
}
_FULL_SCALE = {"u8": 128.0, "s16": 32768.0, "s32": 2.0**31, "s64": 2.0**63}
_INT32_TOP_F32 = np.float32(2147483520.0)  # largest float32 below 2**31

Sink = Callable[[memoryview], None]
# Sees each converted batch as written, (frames, channels); the loudness meter is one.
Meter = Callable[[np.ndarray], None]
# Sees each converted batch as written, (channels, frames), not copied: for reading only.
Observer = Callable[[np.ndarray], None]


@dataclass
class Levels:
    """Running measurements of the decoded signal, relative to full scale."""

    peak: float = 0.0  # largest |sample|; may exceed 1.0 for float sources
    clipped: int = 0  # samples clamped to full scale when written as integers

    def merge(self, other: Levels) -> None:
        """Fold in the levels of another part of the same file."""
        self.peak = max(self.peak, other.peak)
        self.clipped += other.clipped


class Batcher:
    """Collect frames of one decoded format; hand converted, interleaved bytes to ``sink``.

    (Converting on a helper thread while the decoder fills the next batch was measured: no
    gain, because the GIL hand-offs cost what the overlap saves. Long files are decoded in
    parallel processes instead; see ``segments``.)
    """

    def __init__(
        self,
        source_format: str,
        planar: bool,
        target: OutputFormat,
        sink: Sink,
        meter: Meter | None = None,
        dither_seed: int = 0,
        peaks: Observer | None = None,
    ) -> None:
        dtype = _DTYPES.get(source_format)
        if dtype is None:
            raise ConversionFailed(f"unsupported decoded sample format '{source_format}'")
        self.levels = Levels()
        self._planar = planar
        self._target = target
        self._sink = sink
        self._meter = meter
        self._peaks = peaks
        self._kernel = (
            _dithered(source_format, target.bits, TpdfNoise(dither_seed))
            if target.dither
            else _kernel(source_format, target)
        )
        channels = target.channels
        shape = (channels, BATCH_FRAMES) if planar else (BATCH_FRAMES, channels)
        self._batch = np.empty(shape, dtype)
        # The batch as raw bytes, one row per plane (the single packed plane otherwise): a
        # frame's plane is copied in with one slice assignment, 0.7 us a frame less than
        # through numpy, which on a 20-minute MP3 is 2-3 % of ffmpeg's whole time.
        rows = self._batch if planar else [self._batch]
        self._rows = [row.data.cast("B") for row in rows]
        self._frame_bytes = self._batch.itemsize * (1 if planar else channels)
        self._filled = 0
        out_dtype = np.float32 if target.floating else np.int16 if target.bits == 16 else np.int32
        self._out = np.empty((BATCH_FRAMES, channels), out_dtype)
        self._planes = np.empty((channels, BATCH_FRAMES) if planar else (0, 0), out_dtype)

    def add(self, frame: AudioFrame) -> None:
        """Append one frame, handing the batch on whenever it is full."""
        samples = frame.samples
        end = self._filled + samples
        if end < BATCH_FRAMES:  # the usual case, kept short: it runs for every frame
            self._copy(frame.planes, 0, samples)
            self._filled = end
            return
        done, planes = 0, frame.planes
        while done < samples:
            take = min(samples - done, BATCH_FRAMES - self._filled)
            self._copy(planes, done, take)
            done += take
            self._filled += take
            if self._filled == BATCH_FRAMES:
                self._hand_on()

    def finish(self) -> None:
        """Convert and emit whatever is left."""
        if self._filled:
            self._hand_on()

    def _hand_on(self) -> None:
        count, self._filled = self._filled, 0
        self._convert(self._batch, count)

    def _convert(self, batch: np.ndarray, count: int) -> None:
        """Convert ``count`` frames of ``batch`` and pass the bytes to the sink."""
        out = self._out[:count]
        if self._planar:
            # Convert plane by plane into contiguous rows, then interleave: a cast straight
            # into the strided, interleaved view is four times slower.
            planes = self._planes[:, :count]
            self._kernel(batch[:, :count], planes, self.levels)
            for channel, plane in enumerate(planes):
                out[:, channel] = plane
            if self._peaks is not None:
                self._peaks(planes)
        else:
            self._kernel(batch[:count], out, self.levels)
            if self._peaks is not None:
                self._peaks(out.T)
        if self._meter is not None:
            # A copy (the buffer is reused); 24-bit output keeps only the top three bytes.
            self._meter(out & np.int32(-256) if self._target.bits == 24 else out.copy())
        if self._target.bits == 24:
            # pcm_s24le writes the top three bytes of each s32 sample (``sample >> 8``).
            self._sink(memoryview(out.view(np.uint8).reshape(-1, 4)[:, 1:].tobytes()))
        else:
            self._sink(out.data.cast("B"))

    def _copy(self, planes: tuple[Any, ...], offset: int, count: int) -> None:
        """Copy ``count`` samples from the frame's planes, starting at ``offset``."""
        size = self._frame_bytes
        start, stop, at = offset * size, (offset + count) * size, self._filled * size
        # The decoding loop checks every frame's layout, so the plane count always matches; a
        # plane's buffer may be longer than its samples (FFmpeg pads it), never shorter.
        for row, plane in zip(self._rows, planes, strict=False):
            row[at : at + stop - start] = memoryview(plane)[start:stop]


Kernel = Callable[[np.ndarray, np.ndarray, Levels], None]


def _kernel(source: str, target: OutputFormat) -> Kernel:
    """Pick the conversion for one (decoded format, output format) pair."""
    if source in ("flt", "dbl"):
        if target.floating:
            return _float_to_float
        return _float_to_int(source, target.bits)
    if target.floating:
        return _int_to_float(source)
    return _int_to_int(source, target.bits)


def _float_to_float(src: np.ndarray, dst: np.ndarray, levels: Levels) -> None:
    """Float stays float (dbl narrowed as ``(float)x``); nothing clamps, so nothing clips."""
    _measure(src, 1.0, levels)
    np.copyto(dst, src, casting="same_kind")


def _float_to_int(source: str, bits: int) -> Kernel:
    """Scale by 2**15 or 2**31, round half to even, saturate: swresample's float paths."""
    container = 16 if bits == 16 else 32  # 24-bit output is the top of an s32 sample
    scale = src_scale = float(1 << (container - 1))
    top, bottom = scale - 1, -scale

    def convert(src: np.ndarray, dst: np.ndarray, levels: Levels) -> None:
        np.multiply(src, src.dtype.type(src_scale), out=src)
        np.rint(src, out=src)
        high, low = float(src.max()), float(src.min())
        levels.peak = max(levels.peak, high / scale, -low / scale)
        if high <= top and low >= bottom:
            np.copyto(dst, src, casting="unsafe")
            return
        _saturate(src, dst, levels, source, container)

    return convert


def _saturate(src: np.ndarray, dst: np.ndarray, levels: Levels, source: str, bits: int) -> None:
    """The rare batch with samples beyond full scale (or NaN): clamp them and count them.

    Edge cases follow FFmpeg's x86 code exactly: float32 values too large for int32 (and NaN)
    come out of ``cvtps2dq`` as INT32_MIN before 16-bit saturation; for 32-bit output the
    SIMD path turns positive overflow into INT32_MAX. Double precision has no SIMD path:
    ``lrint`` is truncated to ``int`` before ``av_clip_int16``, so wild values wrap there.
    """
    top = (1 << (bits - 1)) - 1
    bottom = -top - 1
    nan = np.isnan(src)
    # Compare with 2**(bits-1), exact in float32, not with top: 2**31 - 1 rounds up to 2**31.
    over, under = src >= top + 1, src < bottom
    levels.clipped += int(np.count_nonzero(over | under | nan))
    if bits == 16 and source == "flt":
        src[~(np.abs(src) < 2.0**31)] = bottom  # NaN and int32 overflow: INT32_MIN
        np.clip(src, bottom, top, out=src)
        np.copyto(dst, src, casting="unsafe")
    elif bits == 16:
        wild = ~(np.abs(src) < 2.0**31)
        as_long = np.where(np.abs(src) < 2.0**63, src, -(2.0**63)).astype(np.int64)
        wrapped = np.where(wild, as_long.astype(np.int32), src)
        np.copyto(dst, np.clip(wrapped, bottom, top), casting="unsafe")
    else:
        ceiling = _INT32_TOP_F32 if source == "flt" else float(top)
        src[nan] = bottom
        np.clip(src, bottom, ceiling, out=src)
        np.copyto(dst, src, casting="unsafe")
        dst[over] = top


def _int_to_float(source: str) -> Kernel:
    """Integer to float: scale by the inverse of the source's full scale, as swresample does."""
    full = _FULL_SCALE[source]

    def convert(src: np.ndarray, dst: np.ndarray, levels: Levels) -> None:
        values = src.astype(np.int16) - 128 if source == "u8" else src
        _measure(values, full, levels)
        np.multiply(values, 1.0 / full, out=dst, casting="unsafe")

    return convert


def _int_to_int(source: str, bits: int) -> Kernel:
    """Between integer widths by shifting (truncating when narrowing), never rounding."""
    source_bits = {"u8": 8, "s16": 16, "s32": 32, "s64": 64}[source]
    container = 16 if bits == 16 else 32
    full = _FULL_SCALE[source]

    def convert(src: np.ndarray, dst: np.ndarray, levels: Levels) -> None:
        values = src.astype(np.int16) - 128 if source == "u8" else src
        _measure(values, full, levels)
        if source_bits > container:
            np.copyto(dst, values >> (source_bits - container), casting="unsafe")
        else:
            np.copyto(dst, values, casting="unsafe")
            if source_bits < container:
                np.left_shift(dst, container - source_bits, out=dst)

    return convert


class TpdfNoise:
    """Triangular noise spanning +-1 LSB, the same for the same seed, sample after sample.

    Each value is the difference of two uniform values in [0, 1), taken from the two halves of
    one 64-bit output of a counter-based generator (numpy's Philox): the n-th sample's noise
    depends only on the seed and n, so a conversion run again dithers identically.
    """

    def __init__(self, seed: int) -> None:
        self._seed = seed
        self._next = 0  # index of the next sample (counted over all channels)

    def take(self, count: int) -> np.ndarray:
        start, self._next = self._next, self._next + count
        skip = start % 4  # Philox hands out four 64-bit words per counter value
        generator = np.random.Philox(key=self._seed, counter=start // 4)
        words = generator.random_raw(skip + count)[skip:]
        high = (words >> np.uint64(32)).astype(np.float64)
        low = (words & np.uint64(0xFFFFFFFF)).astype(np.float64)
        return (high - low) * 2.0**-32


def _dithered(source: str, bits: int, noise: TpdfNoise) -> Kernel:
    """Round to ``bits`` with TPDF dither: add +-1 LSB of triangular noise, then round.

    Rounding alone leaves an error that follows the signal (harmonic distortion, audible in
    fades and quiet passages); with the noise added first, the error is independent of the
    signal, a constant noise floor. Used only where bits are really dropped.
    """
    container = 16 if bits == 16 else 32  # 24-bit output is the top of an s32 sample
    full = float(1 << (container - 1))
    factor = full / _FULL_SCALE[source] if source in _FULL_SCALE else full
    lsb = float(1 << (container - bits))  # one step of the output, in container units
    top, bottom = full - lsb, -full

    def convert(src: np.ndarray, dst: np.ndarray, levels: Levels) -> None:
        values = (src.astype(np.int16) - 128 if source == "u8" else src).astype(np.float64)
        values *= factor
        finite = np.isfinite(values)
        if not finite.all():
            levels.clipped += int(np.count_nonzero(~finite))
            values[~finite] = 0.0
        levels.peak = max(levels.peak, float(np.abs(values).max()) / full)
        values += noise.take(values.size).reshape(values.shape) * lsb
        np.rint(values / lsb, out=values)
        values *= lsb
        over = (values > top) | (values < bottom)
        if over.any():
            levels.clipped += int(np.count_nonzero(over))
            np.clip(values, bottom, top, out=values)
        np.copyto(dst, values, casting="unsafe")

    return convert


def _measure(values: np.ndarray, full_scale: float, levels: Levels) -> None:
    """Track the peak of samples that need no clamping (integer sources, float output)."""
    high, low = float(values.max()), float(values.min())
    levels.peak = max(levels.peak, high / full_scale, -low / full_scale)
