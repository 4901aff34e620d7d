"""Read models: what the dialects render, built from rows with download links filled in.

A dialect never sees a row or a session, only these snapshots, so it cannot run a query or
change state; and the worker renders callback bodies from the same snapshots.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from wavforge.core import clock
from wavforge.core.states import WITH_FILE, WavStatus
from wavforge.db.models import MusicTask, Track, WavTask
from wavforge.db.rows import PlainRow
from wavforge.links import LinkSigner

SOURCE = "source"
WAV = "wav"

# A row read without the ORM (see db.rows) has the same attributes as the entity.
WavTaskRow = WavTask | PlainRow
TrackRow = Track | PlainRow


@dataclass(frozen=True)
class TrackRecord:
    id: str
    music_task_id: str
    position: int
    title: str
    tags: str
    prompt: str
    duration: float
    audio_url: str
    created_at: datetime


@dataclass(frozen=True)
class MusicRecord:
    id: str
    kind: str
    status: str
    params: dict[str, object]
    created_at: datetime
    tracks: list[TrackRecord]


@dataclass(frozen=True)
class WavRecord:
    id: str
    track_id: str
    music_task_id: str
    track_position: int
    dialect: str
    callback_url: str | None
    status: WavStatus
    progress: float
    wav_url: str | None
    error_code: int | None
    error_message: str | None
    created_at: datetime
    completed_at: datetime | None
    options: dict[str, object]
    analysis: dict[str, object] | None
    track_title: str
    credits_charged: int


def safe_filename(title: str, suffix: str) -> str:
    """A filename for links and downloads: the title with anything unusual replaced."""
    stem = re.sub(r"[^\w.\- ]+", "_", title).strip(" ._")[:80] or "track"
    return f"{stem.replace(' ', '_')}{suffix}"


def source_suffix(track: TrackRow) -> str:
    return "." + (track.source_key.rsplit(".", 1)[-1] if "." in track.source_key else "bin")


def track_record(track: TrackRow, links: LinkSigner, expires_at: datetime) -> TrackRecord:
    filename = safe_filename(track.title, source_suffix(track))
    return TrackRecord(
        id=track.id,
        music_task_id=track.music_task_id,
        position=track.position,
        title=track.title,
        tags=track.tags,
        prompt=track.prompt,
        duration=track.duration,
        audio_url=links.url(SOURCE, track.id, filename, expires_at),
        created_at=track.created_at,
    )


def source_link_expiry(retention_seconds: float) -> datetime:
    """When a source link handed out now stops working.

    Sources are kept (an expired WAV may be converted again), so their links roll: each answer
    hands out one valid for ``retention_seconds``, rounded up to the hour so that repeated
    reads within an hour give the same URL.
    """
    hour = timedelta(hours=1)
    later = clock.now() + timedelta(seconds=retention_seconds)
    rounded = later.replace(minute=0, second=0, microsecond=0)
    return rounded + hour if rounded < later else rounded


def music_record(
    task: MusicTask, tracks: list[Track], links: LinkSigner, retention_seconds: float
) -> MusicRecord:
    expires = source_link_expiry(retention_seconds)
    return MusicRecord(
        id=task.id,
        kind=task.kind,
        status=task.status,
        params=task.params,
        created_at=task.created_at,
        tracks=[track_record(t, links, expires) for t in tracks],
    )


def wav_record(task: WavTaskRow, track: TrackRow, links: LinkSigner) -> WavRecord:
    return WavRecord(
        id=task.id,
        track_id=track.id,
        music_task_id=track.music_task_id,
        track_position=track.position,
        dialect=task.dialect,
        callback_url=task.callback_url,
        status=WavStatus(task.status),
        progress=task.progress,
        wav_url=_wav_url(task, track, links),
        error_code=task.error_code,
        error_message=_deletion_message(track) or _expiry_message(task) or task.error_message,
        created_at=task.created_at,
        completed_at=task.completed_at,
        options=dict(task.options or {}),
        analysis=task.analysis,
        track_title=track.title,
        credits_charged=task.credits_charged,
    )


def _expiry_message(task: WavTaskRow) -> str | None:
    """Say why a succeeded record has no URL any more, in both dialects' message field."""
    if task.status not in WITH_FILE or task.expires_at is None or task.expires_at > clock.now():
        return None
    return (
        f"the WAV file expired at {task.expires_at.isoformat(timespec='seconds')}Z and was "
        "deleted; submit the track again to convert it anew"
    )


def _deletion_message(track: TrackRow) -> str | None:
    if track.deleted_at is None:
        return None
    return f"the track was deleted at {track.deleted_at.isoformat(timespec='seconds')}Z"


def _wav_url(task: WavTaskRow, track: TrackRow, links: LinkSigner) -> str | None:
    gone = track.deleted_at is not None
    if gone or not task.wav_key or task.expires_at is None or task.expires_at <= clock.now():
        return None
    return links.url(WAV, task.id, safe_filename(track.title, ".wav"), task.expires_at)
