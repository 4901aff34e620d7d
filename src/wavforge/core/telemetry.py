"""What the core tells the outside about its work: conversions, callbacks, credits, purges.

The core counts events but does not know who listens: Prometheus counters
(:mod:`wavforge.observability.metrics`) are installed by the process that serves them
(``runtime.build_runtime``), and until then every event goes nowhere. So the core never
imports observability, and tests of the core's rules can listen with a recorder of their own.
An event is reported once its outcome is committed.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol


class ConversionOutcome(StrEnum):
    """How one run of a conversion ended in this worker."""

    SUCCEEDED = "succeeded"
    BAD_SOURCE = "bad_source"  # the file is not audio FFmpeg reads, or breaks a limit (400)
    CONVERSION_FAILED = "conversion_failed"  # the decoder failed on it (501)
    SERVER_ERROR = "server_error"  # the converter process, a bug (500)
    RETRYING = "retrying"  # storage or the database failed for a moment: handed back
    GAVE_UP = "gave_up"  # failed after WAVFORGE_MAX_ATTEMPTS runs ended by dying workers
    LEASE_LOST = "lease_lost"  # handed back or taken over: another run finishes the task


class CallbackOutcome(StrEnum):
    """What one callback attempt led to."""

    DELIVERED = "delivered"
    RETRYING = "retrying"  # failed; another attempt is scheduled
    GAVE_UP = "gave_up"  # failed, and it was the last attempt
    LEASE_LOST = "lease_lost"  # took too long; another worker owns the delivery now


class PurgeKind(StrEnum):
    EXPIRED_WAV = "expired_wav"
    IDEMPOTENCY_KEY = "idempotency_key"
    ORPHAN_WAV = "orphan_wav"
    ORPHAN_PEAKS = "orphan_peaks"  # a source's peaks whose source is gone
    PARTIAL_WRITE = "partial_write"


class Telemetry(Protocol):
    """A listener for the core's events."""

    def conversion_finished(self, outcome: ConversionOutcome, seconds: float) -> None: ...

    def callback_attempted(self, outcome: CallbackOutcome) -> None: ...

    def credits_charged(self, amount: int) -> None: ...

    def credits_refunded(self, amount: int) -> None: ...

    def purged(self, kind: PurgeKind, count: int) -> None: ...


class _Unheard:
    """The listener before one is installed: events go nowhere."""

    def conversion_finished(self, outcome: ConversionOutcome, seconds: float) -> None:
        pass

    def callback_attempted(self, outcome: CallbackOutcome) -> None:
        pass

    def credits_charged(self, amount: int) -> None:
        pass

    def credits_refunded(self, amount: int) -> None:
        pass

    def purged(self, kind: PurgeKind, count: int) -> None:
        pass


_listener: Telemetry = _Unheard()


def install(listener: Telemetry) -> None:
    """Send this process's events to ``listener`` from now on."""
    global _listener
    _listener = listener


def events() -> Telemetry:
    """The installed listener: ``telemetry.events().purged(kind, count)``."""
    return _listener
