"""Which stored file a verified download link stands for, and whether it still exists."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from wavforge.core import clock
from wavforge.core.context import Context
from wavforge.core.records import SOURCE, WAV, safe_filename, source_suffix
from wavforge.core.states import WITH_FILE
from wavforge.db.models import Track, WavTask
from wavforge.errors import Gone, NotFound

SOURCE_TYPES = {
    ".mp3": "audio/mpeg",
    ".flac": "audio/flac",
    ".wav": "audio/wav",
    ".ogg": "audio/ogg",
    ".m4a": "audio/mp4",
    ".aiff": "audio/aiff",
}


@dataclass(frozen=True)
class Download:
    key: str
    size: int
    content_type: str
    filename: str


def resolve(ctx: Context, kind: str, ident: str) -> Download:
    if kind == WAV:
        key, filename = _wav(ctx, ident)
        content_type = "audio/wav"
    elif kind == SOURCE:
        key, filename = _source(ctx, ident)
        content_type = SOURCE_TYPES.get(filename[filename.rfind(".") :], "application/octet-stream")
    else:
        raise NotFound()
    size = ctx.storage.size(key)
    if size is None:
        raise Gone()
    return Download(key=key, size=size, content_type=content_type, filename=filename)


def _wav(ctx: Context, task_id: str) -> tuple[str, str]:
    with ctx.db.read() as session:
        found = session.execute(
            select(
                WavTask.wav_key, WavTask.status, WavTask.expires_at, Track.title, Track.deleted_at
            )
            .join(Track, Track.id == WavTask.track_id)
            .where(WavTask.id == task_id)
        ).first()
    if found is None:
        raise NotFound()
    key, status, expires_at, title, deleted_at = found
    expired = expires_at is None or expires_at <= clock.now()
    if key is None or deleted_at is not None or status not in WITH_FILE or expired:
        raise Gone()
    return key, safe_filename(title, ".wav")


def _source(ctx: Context, track_id: str) -> tuple[str, str]:
    with ctx.db.read() as session:
        track = session.get(Track, track_id)
    if track is None:
        raise NotFound()
    if track.deleted_at is not None:
        raise Gone("the track was deleted")
    return track.source_key, safe_filename(track.title, source_suffix(track))
