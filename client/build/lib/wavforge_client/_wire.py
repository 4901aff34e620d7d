"""The wire's ``data`` objects, read into the client's models: one function per shape.

A missing required field raises ``KeyError`` and a wrong type ``TypeError``/``ValueError``;
the caller (``_protocol.Call``) turns those into ``UnexpectedResponse``. Unknown fields are
ignored, so a newer server with more to say does not break an older client.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from wavforge_client._models import (
    Account,
    Analysis,
    ApiKey,
    Delivery,
    DeliveryAttempt,
    IssuedKey,
    Ledger,
    LedgerEntry,
    ListedTrack,
    ListedWavTask,
    MusicTask,
    TaskError,
    Track,
    Usage,
    WavStatus,
    WavTask,
    WebhookSecret,
)

Data = Mapping[str, Any]

# The unified dialect's four words. It cannot tell CALLBACK_EXCEPTION from SUCCESS nor
# CREATE_TASK_FAILED from GENERATE_WAV_FAILED; ``wait`` asks the Suno record for those.
UNIFIED_STATUS = {
    "not_started": WavStatus.PENDING,
    "running": WavStatus.RUNNING,
    "finished": WavStatus.SUCCESS,
    "failed": WavStatus.GENERATE_WAV_FAILED,
}
_ANALYSIS_FIELDS = {
    "source_codec": "sourceCodec",
    "source_bit_rate": "sourceBitRate",
    "source_sample_rate": "sourceSampleRate",
    "source_channels": "sourceChannels",
    "duration": "duration",
    "frames": "frames",
    "output_encoding": "outputEncoding",
    "output_sample_rate": "outputSampleRate",
    "output_channels": "outputChannels",
    "output_bit_depth": "outputBitDepth",
    "output_sample_format": "outputSampleFormat",
    "peak_dbfs": "peakDbfs",
    "clipped_samples": "clippedSamples",
    "sha256": "sha256",
    "source_lossy": "sourceLossy",
    "integrated_loudness": "integratedLoudness",
    "loudness_range": "loudnessRange",
    "true_peak_dbtp": "truePeakDbtp",
}


def when(value: str | None) -> datetime | None:
    """Both dialects' UTC times (``2026-11-21 10:30:00`` and ``2026-11-21T10:30:00``)."""
    return datetime.fromisoformat(value).replace(tzinfo=UTC) if value else None


def analysis(data: Data | None) -> Analysis | None:
    if not data:
        return None
    facts = {name: data.get(key) for name, key in _ANALYSIS_FIELDS.items()}
    return Analysis(**facts, warnings=tuple(data.get("warnings") or ()))


def error(code: int | None, message: str | None) -> TaskError | None:
    return TaskError(code, message or "") if message or code is not None else None


def suno_track(data: Data) -> Track:
    return Track(
        id=data["id"],
        title=data.get("title") or "",
        duration=data.get("duration"),
        audio_url=data.get("audioUrl"),
        tags=data.get("tags") or "",
        prompt=data.get("prompt") or "",
        created=when(data.get("createTime")),
    )


def unified_track(data: Data) -> Track:
    return Track(
        id=data["audio_id"],
        title=data.get("title") or "",
        duration=data.get("duration"),
        audio_url=data.get("audio_url"),
        tags=data.get("tags") or "",
        prompt=data.get("prompt") or "",
    )


def imported(data: Data) -> MusicTask:
    """``POST /api/v1/music/import``."""
    return MusicTask(id=data["taskId"], tracks=tuple(suno_track(t) for t in data["tracks"]))


def suno_music(data: Data) -> MusicTask:
    """``GET /api/v1/generate/record-info``."""
    tracks = tuple(suno_track(t) for t in data["response"]["sunoData"])
    return MusicTask(
        id=data["taskId"],
        tracks=tracks,
        status=data.get("status"),
        created=min((t.created for t in tracks if t.created), default=None),
    )


def suno_wav(data: Data) -> WavTask:
    """``GET /api/v1/wav/record-info``: exact state, no progress (100 once it succeeded)."""
    status = WavStatus(data["successFlag"])
    return WavTask(
        id=data["taskId"],
        status=status,
        progress=100 if status.succeeded else None,
        wav_url=(data.get("response") or {}).get("audioWavUrl"),
        analysis=analysis(data.get("analysis")),
        error=error(data.get("errorCode"), data.get("errorMessage")),
        track_id=data.get("musicId"),
        callback_url=data.get("callbackUrl"),
        created=when(data.get("createTime")),
        completed=when(data.get("completeTime")),
    )


def generated(data: Data) -> str:
    """``POST /api/v1/wav/generate``: the new task's id."""
    return str(data["taskId"])


def is_wav(data: Data) -> bool:
    """The unified endpoints answer for WAV and music tasks alike; only a WAV task has an
    ``analysis`` field (null until it succeeds)."""
    return "analysis" in data


def unified_wav(data: Data) -> WavTask:
    """``status``, ``detail/music`` (of a WAV task) and ``submit``; the file is ``file_url``
    in one, ``wav_url`` in the other."""
    files = data.get("files") or []
    url = next((f.get("file_url") or f.get("wav_url") for f in files), None)
    return WavTask(
        id=data["task_id"],
        status=UNIFIED_STATUS[data["status"]],
        progress=data.get("progress", 0),
        wav_url=url,
        analysis=analysis(data.get("analysis")),
        error=error(None, data.get("error_message")),
        created=when(data.get("created_time")),
    )


def unified_music(data: Data) -> MusicTask:
    return MusicTask(
        id=data["task_id"],
        tracks=tuple(unified_track(f) for f in data.get("files") or []),
        status=data.get("status"),
        created=when(data.get("created_time")),
    )


def unified_any(data: Data) -> WavTask | MusicTask:
    return unified_wav(data) if is_wav(data) else unified_music(data)


def credit(data: Any) -> int:
    if isinstance(data, bool) or not isinstance(data, int):
        raise TypeError("the balance is not an integer")
    return data


def deliveries(data: Data) -> tuple[Delivery, ...]:
    """``GET /api/v1/wav/callbacks``."""
    return tuple(
        Delivery(
            webhook_id=d["webhookId"],
            url=d["url"],
            status=d["status"],
            next_attempt=when(d.get("nextAttemptTime")),
            attempts=tuple(
                DeliveryAttempt(
                    time=when(a.get("time")),
                    status_code=a.get("statusCode"),
                    error=a.get("error"),
                    duration_ms=a.get("durationMs"),
                )
                for a in d.get("attempts") or []
            ),
        )
        for d in data["deliveries"]
    )


def ledger(data: Data) -> Ledger:
    """``GET /api/v1/account/ledger``."""
    return Ledger(
        account_id=data["accountId"],
        balance=credit(data["balance"]),
        entries=tuple(
            LedgerEntry(
                time=when(e.get("time")),
                amount=e["amount"],
                reason=e["reason"],
                task_id=e.get("taskId"),
                note=e.get("note") or "",
            )
            for e in data["entries"]
        ),
    )


# ---- the account and its administration (Suno envelope, camelCase)


def account(data: Data) -> Account:
    """``GET /api/v1/account`` (with secret and usage) and each of ``/admin/accounts``."""
    usage = data.get("usage")
    return Account(
        id=data["accountId"],
        name=data["name"],
        credits=credit(data["credits"]),
        admin=bool(data["admin"]),
        created=when(data.get("createTime")),
        active_keys=data["activeKeys"],
        webhook_secret=data.get("webhookSecret"),
        previous_secret_valid_until=when(data.get("previousSecretValidUntil")),
        usage=None
        if usage is None
        else Usage(
            tracks=usage["tracks"],
            wav_tasks={WavStatus(s): n for s, n in usage["wavTasks"].items()},
            credits_spent=usage["creditsSpent"],
        ),
        profile=data.get("profile"),
    )


def accounts(data: list[Data]) -> tuple[Account, ...]:
    return tuple(account(a) for a in data)


def keys(data: list[Data]) -> tuple[ApiKey, ...]:
    """``GET /api/v1/account/keys``."""
    return tuple(
        ApiKey(
            id=k["keyId"],
            prefix=k["prefix"],
            name=k.get("name") or "",
            account_id=k["accountId"],
            account_name=k.get("accountName") or "",
            credits=k["credits"],
            admin=bool(k["admin"]),
            created=when(k.get("createTime")),
            last_used=when(k.get("lastUsedTime")),
            revoked=bool(k["revoked"]),
            profile=k.get("profile"),
        )
        for k in data
    )


def issued(data: Data) -> IssuedKey:
    """A new key: a new account's, another key of the account, or a reset's replacement."""
    return IssuedKey(
        key=data["key"],
        id=data["keyId"],
        account_id=data["accountId"],
        webhook_secret=data["webhookSecret"],
        profile=data.get("profile"),
    )


def deleted_track(data: Data) -> tuple[str, ...]:
    """``DELETE /api/v1/account/tracks/{id}``: the WAV tasks whose files went with it."""
    if data["deleted"] is not True:
        raise ValueError("the track was not deleted")
    return tuple(data["wavTaskIds"])


def revoked(data: Data) -> None:
    if data["revoked"] is not True:
        raise ValueError("the key was not revoked")


def rotated(data: Data) -> WebhookSecret:
    """``POST /api/v1/account/webhook-secret/rotate``."""
    return WebhookSecret(
        secret=data["webhookSecret"],
        previous_valid_until=when(data.get("previousSecretValidUntil")),
    )


def tracks(data: list[Data]) -> tuple[ListedTrack, ...]:
    """``GET /api/v1/account/tracks``: sunoData items plus the source and the WAV task."""
    return tuple(
        ListedTrack(
            **vars(suno_track(t)),
            music_task_id=t.get("musicTaskId"),
            source_name=t.get("sourceName") or "",
            source_format=t.get("sourceFormat") or "",
            sample_rate=t.get("sampleRate"),
            channels=t.get("channels"),
            wav_task_id=t.get("wavTaskId"),
            wav_status=WavStatus(t["wavStatus"]) if t.get("wavStatus") else None,
            source_sha256=t.get("sourceSha256"),
        )
        for t in data
    )


def wav_tasks(data: list[Data]) -> tuple[ListedWavTask, ...]:
    """``GET /api/v1/account/wav-tasks``: record-info items plus the exact ``status`` (with
    RUNNING), ``progress`` as a fraction, and the title."""
    listed = []
    for item in data:
        record = suno_wav(item)
        status = WavStatus(item["status"])
        progress = percent(status, item.get("progress") or 0)
        fields = vars(record) | {"status": status, "progress": progress}
        listed.append(ListedWavTask(**fields, title=item.get("title") or ""))
    return tuple(listed)


def percent(status: WavStatus, fraction: float) -> int:
    """The unified dialect's rule: 100 once the WAV exists, else at most 99."""
    return 100 if status.succeeded else min(99, int(fraction * 100))


def balance(data: Data) -> int:
    """``POST /api/v1/admin/accounts/{id}/credits``: the balance after the grant."""
    return credit(data["balance"])


def switch(data: Data) -> bool:
    """``/api/v1/admin/maintenance``: whether maintenance mode is on."""
    enabled = data["enabled"]
    if not isinstance(enabled, bool):
        raise TypeError("enabled is not a boolean")
    return enabled
