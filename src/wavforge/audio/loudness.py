"""Loudness, loudness range and true peak (ITU-R BS.1770-4, EBU R128) of the written samples.

Mastering engineers and distributors ask three questions of a WAV: how loud is it overall
(integrated loudness, LUFS), how much does its loudness move (loudness range, LU), and how high
do its peaks go between samples (true peak, dBTP, measured 4x oversampled). The answers come
from FFmpeg's own ``ebur128`` filter, run through PyAV, so they are the numbers
``ffmpeg -af ebur128=peak=true`` prints, not a re-implementation of the filters.

The meter sees the samples exactly as they are written (after rounding, clamping and dither),
in the conversion's one streaming pass. It runs on a thread of its own: libavfilter releases
the GIL, so on a machine with a spare core measuring costs little wall time.
"""

from __future__ import annotations

import math
import queue
import threading
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

# Batches waiting for the meter; bounded so a slow meter holds back the decoder, not memory.
_QUEUE_BATCHES = 8
_FORMATS = {np.dtype(np.int16): "s16", np.dtype(np.int32): "s32", np.dtype(np.float32): "flt"}
_SILENCE_LUFS = -70.0  # ebur128 reports the absolute gate, -70 LUFS, for silence


@dataclass(frozen=True)
class Loudness:
    """The three figures, rounded to 0.01; ``None`` where silence leaves nothing to measure."""

    integrated_lufs: float | None
    range_lu: float | None
    true_peak_dbtp: float | None


class LoudnessMeter:
    """Feed interleaved sample batches with :meth:`add`; :meth:`result` ends the measurement."""

    def __init__(self, sample_rate: int, layout: str) -> None:
        self._rate, self._layout = sample_rate, layout
        self._batches: queue.Queue[np.ndarray | None] = queue.Queue(_QUEUE_BATCHES)
        self._error: BaseException | None = None
        self._metadata: dict[str, str] = {}
        self._true_peak = 0.0
        self._thread = threading.Thread(target=self._run, name="wavforge-loudness", daemon=True)
        self._thread.start()

    def add(self, samples: np.ndarray) -> None:
        """Queue a (frames, channels) batch of the written samples; the meter copies nothing."""
        if self._error is None:
            self._batches.put(samples)

    def result(self) -> Loudness:
        """Wait for the meter to see every batch and return what it measured."""
        self._batches.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error
        integrated = float(self._metadata.get("lavfi.r128.I", "nan"))
        spread = float(self._metadata.get("lavfi.r128.LRA", "nan"))
        silent = not math.isfinite(integrated) or integrated <= _SILENCE_LUFS
        return Loudness(
            integrated_lufs=None if silent else round(integrated, 2),
            range_lu=None if silent or not math.isfinite(spread) else round(spread, 2),
            true_peak_dbtp=_dbtp(self._true_peak),
        )

    def close(self) -> None:
        """Stop the thread without a result (the conversion failed)."""
        if self._thread.is_alive():
            self._error = self._error or RuntimeError("loudness measurement abandoned")
            while self._thread.is_alive():
                try:
                    self._batches.put(None, timeout=0.1)
                except queue.Full:
                    continue
                self._thread.join(0.1)

    def _run(self) -> None:
        graph: av.filter.Graph | None = None
        try:
            while (batch := self._batches.get()) is not None:
                if self._error is not None:
                    continue
                graph = graph or self._graph(batch.dtype)
                graph.push(self._frame(batch))
                self._drain(graph)
            if graph is not None and self._error is None:
                graph.push(None)
                self._drain(graph)
        except BaseException as exc:  # handed to the caller of result()
            self._error = exc

    def _graph(self, dtype: np.dtype) -> av.filter.Graph:
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
        self._pts = 0
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
    try:
        with open(path, "rb") as wav:
            wav.seek(offset)
            for start in range(0, size, step):
                meter.add(_samples(wav.read(min(step, size - start)), fmt))
    except BaseException:
        meter.close()
        raise
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
