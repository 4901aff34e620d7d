"""What the client returns: frozen dataclasses, one shape per thing whichever dialect said it.

Frozen because a result is a snapshot of what the server answered at one moment: asking
again gives a new object, and nothing in the client can change an old one behind a caller's
back. Times are aware datetimes in UTC (the wire carries naive UTC strings in two formats).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path

__all__ = [
    "Account",
    "Analysis",
    "ApiKey",
    "Delivery",
    "DeliveryAttempt",
    "FileInput",
    "IssuedKey",
    "Ledger",
    "LedgerEntry",
    "ListedTrack",
    "ListedWavTask",
    "MusicTask",
    "TaskError",
    "Track",
    "Upload",
    "Usage",
    "WavStatus",
    "WavTask",
    "WebhookSecret",
]


class WavStatus(StrEnum):
    """A WAV task's state, in the Suno dialect's words plus ``RUNNING``.

    The values are the wire's (``successFlag``); the client keeps its own copy rather than
    importing the server's, so ``import wavforge_client`` pulls in nothing of the server, and
    a test keeps the two lists equal.
    """

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCESS = "SUCCESS"
    CALLBACK_EXCEPTION = "CALLBACK_EXCEPTION"  # the WAV exists; every callback attempt failed
    CREATE_TASK_FAILED = "CREATE_TASK_FAILED"
    GENERATE_WAV_FAILED = "GENERATE_WAV_FAILED"

    @property
    def finished(self) -> bool:
        """The task will not change any more (its file may still expire)."""
        return self not in (WavStatus.PENDING, WavStatus.RUNNING)

    @property
    def succeeded(self) -> bool:
        """The conversion wrote its WAV (a failed callback does not undo that)."""
        return self in (WavStatus.SUCCESS, WavStatus.CALLBACK_EXCEPTION)

    @property
    def failed(self) -> bool:
        return self in (WavStatus.CREATE_TASK_FAILED, WavStatus.GENERATE_WAV_FAILED)


@dataclass(frozen=True)
class Upload:
    """A file to import: a path read while it is sent, or bytes already in memory.

    The name matters to the server: it becomes the track's title when the file has no title
    tag, and it names the file in error messages.
    """

    name: str
    content: bytes | Path

    @classmethod
    def of(cls, source: FileInput) -> Upload:
        """Paths (``str`` or ``PathLike``) by their file name; bare bytes as ``upload``."""
        if isinstance(source, Upload):
            return source
        if isinstance(source, bytes):
            return cls("upload", source)
        path = Path(source)
        return cls(path.name, path)


FileInput = str | os.PathLike[str] | bytes | Upload
"""What ``import_files`` takes: a path, bytes (named ``upload``), or an ``Upload``."""


@dataclass(frozen=True)
class Track:
    """An imported track. ``id`` is the ``audioId`` a conversion names."""

    id: str
    title: str
    duration: float | None
    audio_url: str | None  # signed link to the source file, valid for the retention period
    tags: str = ""
    prompt: str = ""
    created: datetime | None = None


@dataclass(frozen=True)
class MusicTask:
    """The task one import created, with one track per file in the order sent.

    Converting by this ``id`` alone (no audio id) converts its first track.
    """

    id: str
    tracks: tuple[Track, ...]
    status: str | None = None  # the music task's own word ("SUCCESS"; None in an import answer)
    created: datetime | None = None


@dataclass(frozen=True)
class Analysis:
    """What a conversion measured, so a caller can check the "lossless" claim for itself."""

    source_codec: str | None
    source_bit_rate: int | None
    source_sample_rate: int | None
    source_channels: int | None
    duration: float | None  # seconds actually written, not what the source's header claimed
    frames: int | None
    output_encoding: str | None
    output_sample_rate: int | None
    output_channels: int | None
    output_bit_depth: int | None
    output_sample_format: str | None  # "int" or "float"
    peak_dbfs: float | None  # None for digital silence
    clipped_samples: int | None
    sha256: str | None
    source_lossy: bool | None = None  # a lossy codec's decode, not the original master
    integrated_loudness: float | None = None  # LUFS (ITU-R BS.1770-4); None for silence
    loudness_range: float | None = None  # LU
    true_peak_dbtp: float | None = None  # dBTP, 4x oversampled
    warnings: tuple[str, ...] = ()  # clipping, or a true peak above -1 dBTP


@dataclass(frozen=True)
class TaskError:
    """Why a task failed, or why its file is gone (then ``code`` is None).

    ``code`` is the callback's code: 400 bad source or a limit, 451 source not fetched,
    500 server error, 501 conversion failed part-way.
    """

    code: int | None
    message: str


@dataclass(frozen=True)
class WavTask:
    """A WAV conversion as the server last described it.

    Both dialects read the same record, but each tells part of it: the Suno record-info has
    the exact ``successFlag``, error code, track and callback URL but no progress; the unified
    status has ``progress`` but folds ``CALLBACK_EXCEPTION`` into success and every failure
    into one word, and names no track. Fields an answer did not carry are None; ``wait``
    combines both, so its result has them all.
    """

    id: str
    status: WavStatus
    progress: int | None  # 0 to 100
    wav_url: str | None  # signed; present only while the file exists
    analysis: Analysis | None  # present once the conversion succeeded
    error: TaskError | None
    track_id: str | None = None
    callback_url: str | None = None
    created: datetime | None = None
    completed: datetime | None = None


@dataclass(frozen=True)
class DeliveryAttempt:
    """One try at a callback: the receiver's HTTP status, or the error that stopped it."""

    time: datetime | None
    status_code: int | None
    error: str | None
    duration_ms: int | None


@dataclass(frozen=True)
class Delivery:
    """One callback of a task: ``PENDING`` (a try is due), ``DELIVERED`` or ``FAILED``."""

    webhook_id: str
    url: str
    status: str
    next_attempt: datetime | None
    attempts: tuple[DeliveryAttempt, ...] = field(default=())


@dataclass(frozen=True)
class LedgerEntry:
    """One change of the balance: ``grant``, ``charge`` or ``refund``."""

    time: datetime | None
    amount: int
    reason: str
    task_id: str | None
    note: str


@dataclass(frozen=True)
class Ledger:
    """The balance and the newest entries; the entries of all time sum to the balance."""

    account_id: str
    balance: int
    entries: tuple[LedgerEntry, ...]


# ---- the account (/api/v1/account/...) and its administration (/api/v1/admin/...)
#
# A key or a webhook secret is never in a repr (``field(repr=False)``): results get logged,
# printed in tracebacks and shown by debuggers, and none of those should leak a credential.


@dataclass(frozen=True)
class Usage:
    """What an account has done: tracks imported, WAV tasks by state, credits spent (charges
    less refunds, over the ledger's whole life)."""

    tracks: int
    wav_tasks: Mapping[WavStatus, int]  # only the states some task is in
    credits_spent: int

    def __hash__(self) -> int:  # as the other models: a mapping alone would not hash
        return hash((self.tracks, tuple(sorted(self.wav_tasks.items())), self.credits_spent))


@dataclass(frozen=True)
class Account:
    """An account. Its owner's overview (``account()``) adds the webhook secret and the usage;
    an admin's list (``admin_accounts()``) leaves them None."""

    id: str
    name: str
    credits: int
    admin: bool
    created: datetime | None
    active_keys: int
    webhook_secret: str | None = field(default=None, repr=False)  # signs the callbacks
    previous_secret_valid_until: datetime | None = None  # the old secret's end after a rotation
    usage: Usage | None = None
    profile: str | None = None  # the vendor profile of its keys; None: the server's default


@dataclass(frozen=True)
class ApiKey:
    """A key as listed: its visible prefix and name, never the key itself (only its hash is
    stored). ``id`` is what ``revoke_key`` and ``reset_key`` take."""

    id: str
    prefix: str
    name: str
    account_id: str
    account_name: str
    credits: int
    admin: bool
    created: datetime | None
    last_used: datetime | None  # to the minute
    revoked: bool
    profile: str | None = None  # the key's own vendor profile, else its account's


@dataclass(frozen=True)
class IssuedKey:
    """A new key (a new account's first, another key, or a reset's replacement): the only time
    the key itself is shown. Keep ``key`` somewhere safe; the server cannot show it again."""

    key: str = field(repr=False)
    id: str
    account_id: str
    webhook_secret: str = field(repr=False)
    profile: str | None = None  # the vendor profile it answers in; None: the server's default


@dataclass(frozen=True)
class WebhookSecret:
    """A rotated webhook secret: callbacks are signed with it and, until
    ``previous_valid_until``, with the old one too (receivers accept either signature)."""

    secret: str = field(repr=False)
    previous_valid_until: datetime | None


@dataclass(frozen=True)
class ListedTrack(Track):
    """A track as ``tracks()`` lists it: a ``Track`` (so ``convert`` takes it) plus its source
    file and its newest live WAV task, if any (a track holds one per output format)."""

    music_task_id: str | None = None
    source_name: str = ""
    source_format: str = ""
    sample_rate: int | None = None
    channels: int | None = None
    wav_task_id: str | None = None
    wav_status: WavStatus | None = None
    source_sha256: str | None = None  # the imported file's; None for older imports


@dataclass(frozen=True)
class ListedWavTask(WavTask):
    """A WAV task as ``wav_tasks()`` lists it: the record-info's fields, the exact status
    (``RUNNING`` included), the progress, and the track's title."""

    title: str = ""
