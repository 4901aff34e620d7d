"""Bodies and renderings of the account and admin endpoints (wavforge extensions).

They live under ``/api/v1`` and speak the Suno dialect's envelope and camelCase, so a client
of the rest of that API needs nothing new to use them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from wavforge import profiles
from wavforge.core import archive
from wavforge.core.account_detail import AccountDetail, Totals
from wavforge.core.accounts import AccountInfo, IssuedKey, KeyInfo
from wavforge.core.archive import Link as ArchiveLink
from wavforge.core.deletion import Deleted
from wavforge.core.history import LatestTask, TrackListing, Usage
from wavforge.core.ledger import MAX_GRANT, Entry, Reason, Statement
from wavforge.core.listing import Page
from wavforge.core.records import WavRecord
from wavforge.core.states import WavStatus
from wavforge.dialects.suno import SunoTrack, Time, WavRecordInfo, time, track, wav_record
from wavforge.dialects.wire import Shape, one_of

# wavforge's own bodies: JSON types as the schema declares them (no "1" for 1, no 0 for false).
STRICT = ConfigDict(extra="forbid", strict=True)

Item = TypeVar("Item")


def _known(name: str | None) -> str | None:
    return None if name is None else profiles.check(name)


# A vendor profile's name, or null for the server's default (WAVFORGE_PROFILE).
ProfileName = Annotated[
    str | None,
    AfterValidator(_known),
    Field(json_schema_extra={"enum": [*profiles.PROFILES, None]}),
]
PROFILE_FIELD = Field(
    default=None,
    description="How errors are numbered for this vendor's clients (docs/api.md); "
    "null: the server's default.",
)


class NewAccount(BaseModel):
    model_config = STRICT

    name: str = Field(min_length=1, max_length=200)
    credits: int = Field(default=0, ge=0, le=MAX_GRANT)
    admin: bool = False
    profile: ProfileName = PROFILE_FIELD


class NewKey(BaseModel):
    model_config = STRICT

    name: str = Field(min_length=1, max_length=200)
    profile: ProfileName = Field(
        default=None,
        description="The key's own vendor profile, whatever its account's; null: the account's.",
    )


class ProfileChoice(BaseModel):
    model_config = STRICT

    profile: ProfileName = PROFILE_FIELD


class Grant(BaseModel):
    model_config = STRICT

    amount: int = Field(ge=-MAX_GRANT, le=MAX_GRANT)
    note: str = Field(default="", max_length=200)


class ArchiveRequest(BaseModel):
    model_config = STRICT

    taskIds: list[Annotated[str, Field(max_length=128)]] = Field(
        max_length=1000,
        description=f"WAV task ids of this account, each with its file; at most "
        f"{archive.MAX_MEMBERS} (after removing repeats).",
    )


class MaintenanceSwitch(BaseModel):
    model_config = STRICT

    enabled: bool


class AdminChoice(BaseModel):
    model_config = STRICT

    admin: bool = Field(description="true: the account's keys may call the admin endpoints.")


def issued(key: IssuedKey) -> dict[str, Any]:
    """A new key: the only time the key itself is ever shown."""
    return {
        "key": key.key,
        "keyId": key.key_id,
        "accountId": key.account_id,
        "webhookSecret": key.webhook_secret,
        "profile": key.profile,
    }


def key_info(row: KeyInfo) -> dict[str, Any]:
    return {
        "keyId": row.key_id,
        "prefix": row.prefix,
        "name": row.name,
        "accountId": row.account_id,
        "accountName": row.account_name,
        "credits": row.credits,
        "admin": row.is_admin,
        "createTime": time(row.created_at),
        "lastUsedTime": time(row.last_used_at),
        "revoked": row.revoked_at is not None,
        "profile": row.profile,
    }


def account_detail(found: AccountDetail) -> dict[str, Any]:
    """An account as an operator looks into it: its row of the account list, every key
    (never the key itself), and its usage ever and over the recent window."""
    return account(found.account) | {
        "keys": [account_key(row) for row in found.keys],
        "usage": {
            "since": time(found.since),
            "allTime": totals(found.all_time),
            "last30Days": totals(found.recent),
        },
    }


def account_key(row: KeyInfo) -> dict[str, Any]:
    return {
        "keyId": row.key_id,
        "prefix": row.prefix,
        "name": row.name,
        "createTime": time(row.created_at),
        "lastUsedTime": time(row.last_used_at),
        "revoked": row.revoked_at is not None,
        "revokeTime": time(row.revoked_at),
        "profile": row.profile,
    }


def totals(found: Totals) -> dict[str, Any]:
    return {
        "imports": found.imports,
        "tracks": found.tracks,
        "wavTasks": {status.value: count for status, count in found.wav_tasks.items()},
        "creditsSpent": found.credits_spent,
        # Milliseconds: a sum of floats carries noise in its last digits.
        "secondsConverted": round(found.seconds_converted, 3),
    }


def track_deleted(track_id: str, deleted: Deleted) -> dict[str, Any]:
    return {"audioId": track_id, "deleted": True, "wavTaskIds": deleted.wav_task_ids}


def account_data_deleted(account_id: str, deleted: Deleted) -> dict[str, Any]:
    return {
        "accountId": account_id,
        "tracksDeleted": len(deleted.track_ids),
        "wavTasksAffected": len(deleted.wav_task_ids),
    }


def ledger(statement: Statement) -> dict[str, Any]:
    return {
        "accountId": statement.account_id,
        "balance": statement.balance,
        "entries": [ledger_line(entry) for entry in statement.entries],
    }


def ledger_line(entry: Entry) -> dict[str, Any]:
    return {
        "time": time(entry.created_at),
        "amount": entry.amount,
        "reason": entry.reason,
        "taskId": entry.wav_task_id,
        "note": entry.note,
    }


def archive_link(found: ArchiveLink) -> dict[str, Any]:
    return {
        "url": found.url,
        "expiresAt": time(found.expires_at),
        "count": found.count,
        "size": found.size,
    }


def page(found: Page[Item], render: Callable[[Item], dict[str, Any]]) -> dict[str, Any]:
    """A page of a listing: its rows, how many match on all pages, and the cursors of the
    pages after and before it."""
    return {
        "items": [render(item) for item in found.items],
        "total": found.total,
        "nextCursor": found.next_cursor,
        "prevCursor": found.prev_cursor,
    }


def account(info: AccountInfo, usage: Usage | None = None) -> dict[str, Any]:
    """An account as its owner (or an admin) sees it; the webhook secret signs its callbacks,
    so whoever holds a key of the account may read it."""
    shown: dict[str, Any] = {
        "accountId": info.id,
        "name": info.name,
        "credits": info.credits,
        "admin": info.is_admin,
        "createTime": time(info.created_at),
        "activeKeys": info.active_keys,
        "profile": info.profile,
    }
    if usage is not None:
        shown |= {
            "webhookSecret": info.webhook_secret,
            "previousSecretValidUntil": time(info.previous_secret_until),
            "usage": {
                "tracks": usage.tracks,
                "wavTasks": {status.value: count for status, count in usage.wav_tasks.items()},
                "creditsSpent": usage.credits_spent,
            },
        }
    return shown


def track_listing(row: TrackListing) -> dict[str, Any]:
    return track(row.track) | {
        "musicTaskId": row.track.music_task_id,
        "sourceName": row.source_name,
        "sourceFormat": row.source_format,
        "sampleRate": row.sample_rate,
        "channels": row.channels,
        "wavTaskId": row.wav_task_id,
        "wavStatus": row.wav_status.value if row.wav_status else None,
        "sourceSha256": row.source_sha256,
        "lastTask": None if row.latest is None else latest_task(row.latest),
    }


def latest_task(latest: LatestTask) -> dict[str, Any]:
    return {
        "taskId": latest.id,
        "status": latest.status.value,
        "progress": latest.progress,
        "errorMessage": latest.error_message,
    }


def wav_listing(record: WavRecord) -> dict[str, Any]:
    """record-info's fields plus what a list needs to be read without opening each task."""
    return wav_record(record) | {
        "status": record.status.value,  # RUNNING included, which successFlag folds away
        "progress": record.progress,
        "title": record.track_title,
    }


# What the OpenAPI schema promises; a description of the dicts above, as in the dialects.

WAV_STATUSES = [status.value for status in WavStatus]


PROFILE_NAMES = [*profiles.PROFILES, None]


class NewKeyIssued(Shape):
    key: str = Field(description="The key itself, shown this once.")
    keyId: str
    accountId: str
    webhookSecret: str
    profile: str | None = one_of(PROFILE_NAMES)


class ListedKey(Shape):
    keyId: str
    prefix: str
    name: str
    accountId: str
    accountName: str
    credits: int
    admin: bool
    createTime: Time
    lastUsedTime: Time | None
    revoked: bool
    profile: str | None = one_of(PROFILE_NAMES)


class LedgerLine(Shape):
    time: Time
    amount: int
    reason: str = one_of(reason.value for reason in Reason)
    taskId: str | None
    note: str


class LedgerStatement(Shape):
    accountId: str
    balance: int
    entries: list[LedgerLine]


class AccountRow(Shape):
    accountId: str
    name: str
    credits: int
    admin: bool
    createTime: Time
    activeKeys: int
    profile: str | None = one_of(PROFILE_NAMES)


class UsageSummary(Shape):
    tracks: int
    wavTasks: dict[str, int] = Field(description="WAV tasks by status.")
    creditsSpent: int


class AccountOverview(AccountRow):
    webhookSecret: str
    previousSecretValidUntil: Time | None
    usage: UsageSummary


class AccountKey(Shape):
    keyId: str
    prefix: str = Field(description="The key's first characters, to recognise it by.")
    name: str
    createTime: Time
    lastUsedTime: Time | None = Field(description="Recorded to the minute; null if never.")
    revoked: bool
    revokeTime: Time | None
    profile: str | None = one_of(PROFILE_NAMES)


class TaskCounts(Shape):
    """WAV tasks by their state now; every state is present (0 when none)."""

    PENDING: int = Field(ge=0)
    RUNNING: int = Field(ge=0)
    SUCCESS: int = Field(ge=0)
    CREATE_TASK_FAILED: int = Field(ge=0)
    GENERATE_WAV_FAILED: int = Field(ge=0)
    CALLBACK_EXCEPTION: int = Field(ge=0)


class UsageTotals(Shape):
    imports: int = Field(ge=0, description="Import requests (music tasks).")
    tracks: int = Field(ge=0, description="Tracks imported, deleted ones included.")
    wavTasks: TaskCounts
    creditsSpent: int = Field(description="Conversion charges less refunds.")
    secondsConverted: float = Field(
        ge=0, description="Audio written by the conversions that made their WAV, in seconds."
    )


class AccountUsage(Shape):
    since: Time = Field(description="The start of the last 30 days (rows created since).")
    allTime: UsageTotals
    last30Days: UsageTotals


class AccountInDetail(AccountRow):
    keys: list[AccountKey] = Field(description="Every key of the account, oldest first.")
    usage: AccountUsage


class AccountAdmin(Shape):
    accountId: str
    admin: bool


class LastTask(Shape):
    taskId: str
    status: str = one_of(WAV_STATUSES)
    progress: float = Field(ge=0, le=1)
    errorMessage: str | None


class ListedTrack(SunoTrack):
    musicTaskId: str
    sourceName: str
    sourceFormat: str
    sampleRate: int
    channels: int
    wavTaskId: str | None
    wavStatus: str | None = one_of([*WAV_STATUSES, None])
    sourceSha256: str | None = Field(description="The imported file's SHA-256.")
    lastTask: LastTask | None = Field(
        description="The track's newest WAV task in any state (a failed one included)."
    )


class ListedWavTask(WavRecordInfo):
    status: str = one_of(WAV_STATUSES)
    progress: float = Field(ge=0, le=1)
    title: str


class PageShape(Shape):
    total: int = Field(ge=0, description="Rows matching the search and filters, on all pages.")
    nextCursor: str | None = Field(
        description="Pass as ``cursor`` for the next page; null on the last page."
    )
    prevCursor: str | None = Field(
        description="Pass as ``cursor`` for the page before; null on the first page."
    )


class TrackPage(PageShape):
    items: list[ListedTrack]


class WavTaskPage(PageShape):
    items: list[ListedWavTask]


class LedgerPage(PageShape):
    items: list[LedgerLine]


class ArchiveLinkShape(Shape):
    url: str = Field(description="Signed; a plain GET with no Authorization downloads the ZIP.")
    expiresAt: Time
    count: int = Field(ge=1, le=archive.MAX_MEMBERS, description="WAVs in the archive.")
    size: int = Field(ge=0, description="The archive's size in bytes.")


class KeyRevoked(Shape):
    keyId: str
    revoked: Literal[True]


class AccountBalance(Shape):
    accountId: str
    balance: int


class MaintenanceState(Shape):
    enabled: bool


class TrackDeleted(Shape):
    audioId: str
    deleted: Literal[True]
    wavTaskIds: list[str] = Field(description="Its WAV records; their links now answer 410.")


class AccountDataDeleted(Shape):
    accountId: str
    tracksDeleted: int
    wavTasksAffected: int


class AccountProfile(Shape):
    accountId: str
    profile: str | None = one_of(PROFILE_NAMES)


class WaveformPeaks(Shape):
    """A WAV's or a source's waveform peaks in BBC audiowaveform's JSON layout (version 2,
    8 bits); a source's are those of the WAV a default conversion of it writes."""

    version: Literal[2]
    channels: int = Field(description="Channels of the audio; `data` interleaves them.")
    sample_rate: int = Field(description="Sample rate of the audio, in Hz.")
    samples_per_pixel: int = Field(description="Sample frames each pixel covers.")
    bits: Literal[8] = Field(description="Each value is the sample's top 8 bits, -128..127.")
    length: int = Field(description="Pixels; the last may cover fewer frames.")
    data: list[int] = Field(
        description="Per pixel, per channel: min, max (`length * channels * 2` values)."
    )
