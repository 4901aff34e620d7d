"""Waveform peaks of the written samples, measured while they are written.

A player draws a track from a few thousand (min, max) pairs per channel instead of decoding the
whole WAV in the browser. They are measured in the conversion pass, from the same converted
batch the WAV receives, so they are exactly the minimum and maximum of the written samples.

Pixels are aligned on absolute sample frames (pixel ``i`` covers frames ``i * spp`` to
``(i + 1) * spp - 1``), so the parts of a split decode measure their own frames and the parent
merges them exactly: a pixel cut in two by a part boundary is the min of the mins and the max
of the maxes. The number of pixels is kept within ``MAX_POINTS`` by coarsening at the end
(merging ``k`` neighbours into one is exact too), whatever the track's real length.

Stored as BBC audiowaveform's JSON "version 2" layout with ``bits`` 8: each value is the top
eight bits of the sample (an arithmetic shift of an integer sample; ``floor(x * 128)`` of a
float one, clamped to -128..127), so ``floor`` of the min is the min of the floors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "MAX_POINTS",
    "MIN_SAMPLES_PER_PIXEL",
    "TARGET_POINTS",
    "PeakMeter",
    "Peaks",
    "Waveform",
    "samples_per_pixel",
]

TARGET_POINTS = 2048  # pixels for a track whose length the header tells
MAX_POINTS = 4096  # never more, whatever the real length turns out to be
MIN_SAMPLES_PER_PIXEL = 256  # audiowaveform's default zoom: short tracks get fewer pixels
FORMAT_VERSION = 2
BITS = 8


@dataclass(frozen=True)
class Peaks:
    """Per-pixel extremes of one run of frames: ``low``/``high`` are (pixels, channels) in the
    written sample type, starting at pixel ``first``."""

    samples_per_pixel: int
    first: int
    low: np.ndarray
    high: np.ndarray

    @property
    def length(self) -> int:
        return len(self.low)

    @staticmethod
    def merge(parts: list[Peaks]) -> Peaks | None:
        """One run from the parts of a split decode (any order, overlapping at the edges)."""
        parts = [part for part in parts if part.length]
        if not parts:
            return None
        first = min(part.first for part in parts)
        end = max(part.first + part.length for part in parts)
        sample = parts[0]
        low = np.full((end - first, sample.low.shape[1]), _top(sample.low.dtype), sample.low.dtype)
        high = np.full_like(low, _bottom(sample.low.dtype))
        for part in parts:
            at = slice(part.first - first, part.first - first + part.length)
            np.minimum(low[at], part.low, out=low[at])
            np.maximum(high[at], part.high, out=high[at])
        return Peaks(sample.samples_per_pixel, first, low, high)

    def coarsened(self, max_points: int = MAX_POINTS) -> Peaks:
        """Merge neighbouring pixels until at most ``max_points`` remain (from pixel 0)."""
        end = self.first + self.length
        factor = math.ceil(end / max_points) if end > max_points else 1
        if factor == 1 and self.first == 0:
            return self
        whole = Peaks.merge([self, _empty(self, 0)]) if self.first else self
        assert whole is not None
        pixels = math.ceil(end / factor)
        pad = pixels * factor - end
        low = _pad(whole.low, pad, _top(whole.low.dtype))
        high = _pad(whole.high, pad, _bottom(whole.high.dtype))
        channels = low.shape[1]
        return Peaks(
            self.samples_per_pixel * factor,
            0,
            low.reshape(pixels, factor, channels).min(axis=1),
            high.reshape(pixels, factor, channels).max(axis=1),
        )

    def audiowaveform(self, sample_rate: int) -> dict[str, Any]:
        """The BBC audiowaveform JSON (version 2, 8 bits): per pixel, per channel, min, max."""
        whole = self.coarsened()
        low, high = _eight_bits(whole.low), _eight_bits(whole.high)
        pixels, channels = low.shape
        data = np.empty((pixels, channels, 2), np.int16)
        data[:, :, 0], data[:, :, 1] = low, high
        return {
            "version": FORMAT_VERSION,
            "channels": channels,
            "sample_rate": sample_rate,
            "samples_per_pixel": whole.samples_per_pixel,
            "bits": BITS,
            "length": pixels,
            "data": data.reshape(-1).tolist(),
        }


@dataclass(frozen=True)
class Waveform:
    """Peaks and the sample rate they were measured at: all a stored document needs. A
    conversion has one (``ConversionResult.waveform``), and so has a source measured alone
    (``engine.measure_peaks``); ``peaks`` is None when none were measured."""

    peaks: Peaks | None
    sample_rate: int

    def document(self) -> dict[str, Any] | None:
        """The audiowaveform JSON document, or None without peaks."""
        return None if self.peaks is None else self.peaks.audiowaveform(self.sample_rate)


def samples_per_pixel(expected_frames: int | None, sample_rate: int) -> int:
    """The zoom for a track: about ``TARGET_POINTS`` pixels when its length is known, a tenth
    of a second a pixel otherwise (coarsened at the end if that makes too many)."""
    if expected_frames is None:
        return max(MIN_SAMPLES_PER_PIXEL, sample_rate // 10)
    return max(MIN_SAMPLES_PER_PIXEL, math.ceil(expected_frames / TARGET_POINTS))


class PeakMeter:
    """Sees each converted batch, channel by channel, and keeps every pixel's min and max.

    ``start`` is the absolute frame of the first sample it will see (a part of a split decode
    learns it from its first frame's timestamp, then calls :meth:`begin_at`).
    """

    def __init__(self, samples_per_pixel: int, start: int = 0) -> None:
        self.spp = samples_per_pixel
        self._next = start
        self._first: int | None = None
        self._end = 0  # one past the last pixel begun
        self._low: list[np.ndarray] = []
        self._high: list[np.ndarray] = []

    def begin_at(self, frame: int) -> None:
        assert self._first is None, "the start is set before the first batch"
        self._next = frame

    def add(self, channels: np.ndarray) -> None:
        """Measure one batch, shaped (channels, frames) (rows may be strided views)."""
        count = channels.shape[1]
        if count == 0:
            return
        if channels.strides[1] != channels.itemsize:
            # Interleaved samples: one copy into rows is cheaper than reducing strided ones.
            channels = np.ascontiguousarray(channels)
        start, spp = self._next, self.spp
        self._next += count
        if self._first is None:
            self._first = start // spp
        head = min((-start) % spp, count)
        if head:
            self._extend(channels[:, :head], start // spp)
        body = (count - head) // spp * spp
        if body:
            rows = [row[head : head + body].reshape(-1, spp) for row in channels]
            self._low.append(np.stack([row.min(axis=1) for row in rows], axis=1))
            self._high.append(np.stack([row.max(axis=1) for row in rows], axis=1))
        if head + body < count:
            tail = channels[:, head + body :]
            self._low.append(tail.min(axis=1)[None, :])
            self._high.append(tail.max(axis=1)[None, :])
        self._end = (self._next - 1) // spp + 1

    def _extend(self, part: np.ndarray, pixel: int) -> None:
        """Fold the frames before the first boundary into the pixel already begun, if any."""
        low, high = part.min(axis=1), part.max(axis=1)
        if self._low and self._end - 1 == pixel:
            np.minimum(self._low[-1][-1], low, out=self._low[-1][-1])
            np.maximum(self._high[-1][-1], high, out=self._high[-1][-1])
        else:
            self._low.append(low[None, :])
            self._high.append(high[None, :])

    def result(self) -> Peaks | None:
        if not self._low or self._first is None:
            return None
        return Peaks(self.spp, self._first, np.concatenate(self._low), np.concatenate(self._high))


def _eight_bits(values: np.ndarray) -> np.ndarray:
    """The top eight bits of each sample, as audiowaveform's 8-bit output has them."""
    if values.dtype == np.int16:
        return (values >> 8).astype(np.int16)
    if values.dtype == np.int32:  # 24-bit samples sit in the top of an int32, as 32-bit ones
        return (values >> 24).astype(np.int16)
    scaled = np.floor(np.nan_to_num(values.astype(np.float64), nan=0.0) * 128.0)
    return np.clip(scaled, -128, 127).astype(np.int16)


def _top(dtype: np.dtype[Any]) -> Any:
    return np.finfo(dtype).max if dtype.kind == "f" else np.iinfo(dtype).max


def _bottom(dtype: np.dtype[Any]) -> Any:
    return np.finfo(dtype).min if dtype.kind == "f" else np.iinfo(dtype).min


def _pad(values: np.ndarray, rows: int, fill: Any) -> np.ndarray:
    if not rows:
        return values
    return np.concatenate([values, np.full((rows, values.shape[1]), fill, values.dtype)])


def _empty(like: Peaks, first: int) -> Peaks:
    shape = (1, like.low.shape[1])
    return Peaks(
        like.samples_per_pixel,
        first,
        np.full(shape, _top(like.low.dtype), like.low.dtype),
        np.full(shape, _bottom(like.low.dtype), like.low.dtype),
    )
