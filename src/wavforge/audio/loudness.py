"""Loudness, loudness range and true peak (ITU-R BS.1770-4, EBU R128) of the written samples.

Mastering engineers and distributors ask three questions of a WAV: how loud is it overall
(integrated loudness, LUFS), how much does its loudness move (loudness range, LU), and how high
do its peaks go between samples (true peak, dBTP, measured 4x oversampled). The answers come
from FFmpeg's own ``ebur128`` filter, run through PyAV, so they are the numbers
``ffmpeg -af ebur128=peak=true`` prints, not a re-implementation of the filters.

The meter sees the samples exactly as they are written (after rounding, clamping and dither),
in the conversion's one streaming pass. It is not cheap: about 1.4 s of CPU per 10 minutes of
stereo, two thirds of it the 4x-oversampled true peak, more than decoding a 320 kb/s MP3 takes.
So the service can turn it off (``WAVFORGE_MEASURE_LOUDNESS``), and ``convert-file`` runs it
only when asked (``--json`` or ``--loudness``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.error
import av.filter
import numpy as np
from av.audio.frame import AudioFrame

from wavforge.audio.formats import OutputFormat
from wavforge.audio.samples import BATCH_FRAMES

__all__ = ["Loudness", "LoudnessMeter", "measure_written"]

_FORMATS = {np.dtype(np.int16): "s16", np.dtype(np.int32): "s32", np.dtype(np.float32): "flt"}
_SILENCE_LUFS = -70.0  # ebur128 reports the absolute gate, -70 LUFS, for silence


@dataclass(frozen=True)
class Loudness:
    """The three figures, rounded to 0.01; ``None`` where silence leaves nothing to measure."""

    integrated_lufs: float | None
    range_lu: float | None
    true_peak_dbtp: float | None


class LoudnessMeter:
    """Feed interleaved sample batches with :meth:`add`; :meth:`result` ends the measurement.

    It runs in the caller's thread. (A thread of its own would overlap it with decoding, since
    libavfilter releases the GIL, but a conversion child near its memory limit can hang for
    good in ``Thread.start``: CPython waits for a thread whose start-up failed.)
    """

    def __init__(self, sample_rate: int, layout: str) -> None:
        self._rate, self._layout = sample_rate, layout
        self._graph: av.filter.Graph | None = None
        self._pts = 0
        self._metadata: dict[str, str] = {}
        self._true_peak = 0.0

    def add(self, samples: np.ndarray) -> None:
        """Measure a (frames, channels) batch of the written samples."""
        if self._graph is None:
            self._graph = self._new_graph(samples.dtype)
        self._graph.push(self._frame(samples))
        self._drain(self._graph)

    def result(self) -> Loudness:
        """End the measurement and return what it measured."""
        if self._graph is not None:
            self._graph.push(None)
            self._drain(self._graph)
        integrated = float(self._metadata.get("lavfi.r128.I", "nan"))
        spread = float(self._metadata.get("lavfi.r128.LRA", "nan"))
        silent = not math.isfinite(integrated) or integrated <= _SILENCE_LUFS
        return Loudness(
            integrated_lufs=None if silent else round(integrated, 2),
            range_lu=None if silent or not math.isfinite(spread) else round(spread, 2),
            true_peak_dbtp=_dbtp(self._true_peak),
        )

    def _new_graph(self, dtype: np.dtype) -> av.filter.Graph:
        graph = av.filter.Graph()
        source = graph.add_abuffer(
            format=_FORMATS[dtype],
            sample_rate=self._rate,
            layout=self._layout,
            time_base=Fraction(1, self._rate),
        )
        meter = graph.add("ebur128", "peak=true:metadata=1")
        sink = graph.add("abuffersink")
        source.link_to(meter)
        meter.link_to(sink)
        graph.configure()
        return graph

    def _frame(self, batch: np.ndarray) -> AudioFrame:
        frame = AudioFrame.from_ndarray(
            batch.reshape(1, -1), format=_FORMATS[batch.dtype], layout=self._layout
        )
        frame.sample_rate, frame.time_base = self._rate, Fraction(1, self._rate)
        frame.pts = self._pts
        self._pts += len(batch)
        return frame

    def _drain(self, graph: av.filter.Graph) -> None:
        """Take what the filter passed through; the newest frame carries the running figures."""
        last = None
        while True:
            try:
                last = graph.pull()
            except (BlockingIOError, av.error.EOFError):
                break
        if isinstance(last, AudioFrame):
            metadata = dict(last.metadata)
            self._metadata = metadata
            self._true_peak = max(self._true_peak, float(metadata.get("lavfi.r128.true_peak", 0)))


def measure_written(path: Path, offset: int, size: int, fmt: OutputFormat, layout: str) -> Loudness:
    """Measure sample data already in a WAV: for parts decoded in other processes.

    This reads back what was written (no second decode), a batch at a time.
    """
    meter = LoudnessMeter(fmt.sample_rate, layout)
    step = BATCH_FRAMES * fmt.block_align
    with open(path, "rb") as wav:
        wav.seek(offset)
        for start in range(0, size, step):
            meter.add(_samples(wav.read(min(step, size - start)), fmt))
    return meter.result()


def _samples(data: bytes, fmt: OutputFormat) -> np.ndarray:
    """WAV bytes as a (frames, channels) array the meter takes; 24-bit becomes top-aligned s32."""
    flat: np.ndarray
    if fmt.floating:
        flat = np.frombuffer(data, np.float32)
    elif fmt.bits == 16:
        flat = np.frombuffer(data, np.int16)
    elif fmt.bits == 32:
        flat = np.frombuffer(data, np.int32)
    else:
        triples = np.frombuffer(data, np.uint8).reshape(-1, 3)
        wide = np.zeros((len(triples), 4), np.uint8)
        wide[:, 1:] = triples
        flat = wide.view(np.int32).ravel()
    return flat.reshape(-1, fmt.channels)


def _dbtp(linear: float) -> float | None:
    return round(20 * math.log10(linear), 2) if linear > 0 and math.isfinite(linear) else None
