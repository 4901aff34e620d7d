"""Every state a record can be in, named once."""

from __future__ import annotations

from enum import StrEnum


class WavStatus(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCESS = "SUCCESS"
    CREATE_TASK_FAILED = "CREATE_TASK_FAILED"
    GENERATE_WAV_FAILED = "GENERATE_WAV_FAILED"
    CALLBACK_EXCEPTION = "CALLBACK_EXCEPTION"


UNFINISHED = (WavStatus.PENDING, WavStatus.RUNNING)
FAILED = (WavStatus.CREATE_TASK_FAILED, WavStatus.GENERATE_WAV_FAILED)
WITH_FILE = (WavStatus.SUCCESS, WavStatus.CALLBACK_EXCEPTION)  # the WAV exists until it expires


class PeaksStatus(StrEnum):
    """A source's peaks job (``core.source_peaks``). Waiting and running are spelt as a WAV
    task's, so the claims and the fair share (``core.leases``, ``core.fair_share``) serve
    both tables."""

    PENDING = WavStatus.PENDING.value
    RUNNING = WavStatus.RUNNING.value
    DONE = "DONE"
    FAILED = "FAILED"


class DeliveryStatus(StrEnum):
    PENDING = "PENDING"
    DELIVERED = "DELIVERED"
    FAILED = "FAILED"


class FailureCode:
    """The callback codes of a failed conversion (CONTRACT §4)."""

    BAD_SOURCE = 400
    FETCH_FAILED = 451
    SERVER_ERROR = 500
    CONVERSION_FAILED = 501
