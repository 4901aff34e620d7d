"""What the core needs from the outside world, handed in once per process."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from wavforge.audio import AudioInfo, ConversionResult, Waveform
from wavforge.config import Settings
from wavforge.core.maintenance import MaintenanceGate
from wavforge.core.rate_limits import RateLimiter
from wavforge.core.records import WavRecord
from wavforge.db.database import Database
from wavforge.links import LinkSigner
from wavforge.outbound import Attempt
from wavforge.storage import Storage


class Dispatcher(Protocol):
    """Wakes a worker for a row. A lost message is recovered by the sweep, never by the caller."""

    def convert(self, wav_task_id: str) -> None: ...

    def deliver(self, delivery_id: str, delay: float | None = None) -> None: ...

    def measure_peaks(self, track_id: str) -> None: ...


class Converter(Protocol):
    """Runs the audio engine, isolated from the calling process (see ``audio.isolation``)."""

    def convert(
        self,
        src: Path,
        dst: Path,
        *,
        on_progress: Callable[[float], None] | None = None,
        **engine_options: Any,
    ) -> ConversionResult: ...

    def measure_peaks(
        self,
        src: Path,
        *,
        on_progress: Callable[[float], None] | None = None,
        **engine_options: Any,
    ) -> Waveform: ...


class CallbackPoster(Protocol):
    """POSTs a signed callback body (``outbound.post_json``); never raises, reports."""

    def __call__(
        self, url: str, body: bytes, *, timeout: float, headers: dict[str, str], allow_private: bool
    ) -> Attempt: ...


class Prober(Protocol):
    """Describes an untrusted file, isolated as conversions are (see ``audio.isolation``)."""

    def probe(self, src: Path) -> AudioInfo: ...


class CallbackDialect(Protocol):
    """What a delivery needs of the dialect its task was made in (``wavforge.dialects``)."""

    def callback_body(self, record: WavRecord) -> dict[str, Any]: ...

    def retry_schedule(self, settings: Settings) -> tuple[float, ...]: ...


class DialectBook(Protocol):
    def named(self, name: str | None) -> CallbackDialect: ...


@dataclass
class Context:
    settings: Settings
    db: Database
    storage: Storage
    links: LinkSigner
    dispatch: Dispatcher
    post: CallbackPoster
    converter: Converter
    prober: Prober
    dialects: DialectBook
    limiter: RateLimiter
    maintenance: MaintenanceGate
