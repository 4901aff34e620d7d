"""Stand-ins for what the core reaches outside the process: the queue, the converter and
prober children, the callback's HTTP POST, the telemetry listener, and time.

Each implements the protocol the core declares (``wavforge.core.context``,
``wavforge.core.telemetry``) and records what it was asked, so a test can assert on it.
"""

from __future__ import annotations

import hashlib
import wave
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from wavforge.audio import Analysis, AudioInfo, ConversionResult, UnsupportedAudio, Waveform
from wavforge.audio.peaks import Peaks
from wavforge.core.telemetry import CallbackOutcome, ConversionOutcome, PurgeKind
from wavforge.outbound.post import Attempt


class Clock:
    """The core's time, moved only by the test: ``wavforge.core.clock.now`` (the database's
    naive UTC datetimes) and the monotonic seconds the lease heartbeat and the maintenance
    cache count with."""

    def __init__(self, start: datetime) -> None:
        self._now = start
        self._monotonic = 1_000.0

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._monotonic

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)
        self._monotonic += seconds


class QueueDown(Exception):
    """What a broken queue raises when a message is sent."""


@dataclass
class RecordingDispatcher:
    """The ``Dispatcher`` protocol: records each message instead of queueing it."""

    converts: list[str] = field(default_factory=list)
    deliveries: list[tuple[str, float | None]] = field(default_factory=list)
    peaks: list[str] = field(default_factory=list)
    down: bool = False  # every message fails, as with a queue that cannot be reached

    def convert(self, wav_task_id: str) -> None:
        if self.down:
            raise QueueDown("the queue cannot be reached")
        self.converts.append(wav_task_id)

    def deliver(self, delivery_id: str, delay: float | None = None) -> None:
        if self.down:
            raise QueueDown("the queue cannot be reached")
        self.deliveries.append((delivery_id, delay))

    def measure_peaks(self, track_id: str) -> None:
        if self.down:
            raise QueueDown("the queue cannot be reached")
        self.peaks.append(track_id)

    def take_peaks(self) -> list[str]:
        """The peaks messages sent since the last call, oldest first."""
        taken, self.peaks = self.peaks, []
        return taken

    def take_converts(self) -> list[str]:
        """The conversion messages sent since the last call, oldest first."""
        taken, self.converts = self.converts, []
        return taken


@dataclass(frozen=True)
class ConverterCall:
    source: bytes
    dst: Path
    options: dict[str, Any]


# What a step of the converter's script may be: an error to raise instead of converting, or
# something to do mid-conversion (given the progress callback), before the WAV is written.
Step = BaseException | Callable[[Callable[[float], None]], None]


class FakeConverter:
    """The ``Converter`` protocol: writes a short, real WAV (silence) and returns a real
    ``ConversionResult``; or, as scripted, raises what the engine or its isolation would."""

    SAMPLE_RATE = 44_100
    CHANNELS = 2
    FRAMES = 4_410  # 0.1 s

    def __init__(self) -> None:
        self.calls: list[ConverterCall] = []
        self.measured: list[ConverterCall] = []  # sources whose peaks were measured
        self._script: deque[Step] = deque()

    def fail_next(self, error: BaseException) -> None:
        """The next conversion raises ``error`` and leaves nothing at its destination."""
        self._script.append(error)

    def meanwhile_next(self, action: Callable[[Callable[[float], None]], None]) -> None:
        """The next conversion runs ``action(on_progress)`` before it writes its WAV."""
        self._script.append(action)

    def convert(
        self,
        src: Path,
        dst: Path,
        *,
        on_progress: Callable[[float], None] | None = None,
        **engine_options: Any,
    ) -> ConversionResult:
        self.calls.append(ConverterCall(src.read_bytes(), dst, dict(engine_options)))
        step = self._script.popleft() if self._script else None
        if isinstance(step, BaseException):
            raise step
        progress = on_progress or (lambda _fraction: None)
        if step is not None:
            step(progress)
        progress(0.5)
        return self._write(dst)

    def measure_peaks(
        self,
        src: Path,
        *,
        on_progress: Callable[[float], None] | None = None,
        **engine_options: Any,
    ) -> Waveform:
        """A source's peaks as the engine measures them: silence, one pixel per 256 frames;
        or, as scripted (the same script as conversions), an error or something meanwhile."""
        self.measured.append(ConverterCall(src.read_bytes(), src, dict(engine_options)))
        step = self._script.popleft() if self._script else None
        if isinstance(step, BaseException):
            raise step
        if step is not None:
            step(on_progress or (lambda _fraction: None))
        pixels = -(-self.FRAMES // 256)
        silence = np.zeros((pixels, self.CHANNELS), np.int16)
        return Waveform(Peaks(256, 0, silence, silence.copy()), self.SAMPLE_RATE)

    def _write(self, dst: Path) -> ConversionResult:
        samples = bytes(self.FRAMES * self.CHANNELS * 2)
        with wave.open(str(dst), "wb") as out:
            out.setnchannels(self.CHANNELS)
            out.setsampwidth(2)
            out.setframerate(self.SAMPLE_RATE)
            out.writeframes(samples)
        analysis = Analysis(
            source_codec="mp3",
            source_bit_rate=128_000,
            source_sample_rate=self.SAMPLE_RATE,
            source_channels=self.CHANNELS,
            duration=self.FRAMES / self.SAMPLE_RATE,
            frames=self.FRAMES,
            output_encoding="pcm_s16le",
            output_sample_rate=self.SAMPLE_RATE,
            output_channels=self.CHANNELS,
            output_bit_depth=16,
            output_sample_format="int",
            peak_dbfs=None,
            clipped_samples=0,
            sha256=hashlib.sha256(samples).hexdigest(),
            source_lossy=True,
        )
        return ConversionResult(
            frames=self.FRAMES,
            sample_rate=self.SAMPLE_RATE,
            channels=self.CHANNELS,
            bytes_written=dst.stat().st_size,
            analysis=analysis,
        )


NOT_AUDIO = b"not audio"


class FakeProber:
    """The ``Prober`` protocol: describes any file as a 4 s MP3, except one that starts with
    :data:`NOT_AUDIO`, which it refuses as the engine would."""

    def __init__(self) -> None:
        self.probed: list[Path] = []

    def probe(self, src: Path) -> AudioInfo:
        self.probed.append(src)
        if src.read_bytes().startswith(NOT_AUDIO):
            raise UnsupportedAudio("the file has no audio stream")
        return AudioInfo(
            format_name="mp3",
            codec="mp3",
            sample_rate=44_100,
            channels=2,
            duration=4.0,
            bit_rate=128_000,
            lossless=False,
        )


@dataclass(frozen=True)
class Post:
    url: str
    body: bytes
    headers: dict[str, str]
    timeout: float
    allow_private: bool


class ScriptedReceiver:
    """The context's ``post`` (``outbound.post_json`` in a server), the callback's one HTTP
    call: records each POST and answers from its script (then 200s), without a network. A
    scripted answer may be a function, run while the POST is in flight, that returns it."""

    def __init__(self) -> None:
        self.posts: list[Post] = []
        self._answers: deque[Attempt | Callable[[], Attempt]] = deque()

    def answer(self, *answers: Attempt | Callable[[], Attempt]) -> None:
        self._answers.extend(answers)

    def __call__(
        self, url: str, body: bytes, *, timeout: float, headers: dict[str, str], allow_private: bool
    ) -> Attempt:
        self.posts.append(Post(url, body, dict(headers), timeout, allow_private))
        answer = self._answers.popleft() if self._answers else Attempt(200, None, 3)
        return answer if isinstance(answer, Attempt) else answer()


def refused(status: int, retry_after: float | None = None) -> Attempt:
    """A receiver's answer that is not a success."""
    return Attempt(status, None, 5, retry_after)


def unreachable() -> Attempt:
    return Attempt(None, "connection refused", 1)


class EventLog:
    """The ``Telemetry`` protocol: keeps every event the core reports, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []

    def conversion_finished(self, outcome: ConversionOutcome, seconds: float) -> None:
        self.events.append(("conversion_finished", outcome))

    def callback_attempted(self, outcome: CallbackOutcome) -> None:
        self.events.append(("callback_attempted", outcome))

    def credits_charged(self, amount: int) -> None:
        self.events.append(("credits_charged", amount))

    def credits_refunded(self, amount: int) -> None:
        self.events.append(("credits_refunded", amount))

    def purged(self, kind: PurgeKind, count: int) -> None:
        self.events.append(("purged", (kind, count)))

    def of(self, name: str) -> list[object]:
        """The values of every event called ``name``, in order."""
        return [value for event, value in self.events if event == name]
