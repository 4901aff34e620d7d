"""Track import: staged local files become one music task with one track per file.

Either every file is accepted or nothing remains: files are checked first, moved into storage
next, and rows written last in one transaction; any failure removes what was stored. The
sources' waveform peaks are measured after the import has answered (``source_peaks``).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from wavforge import audio
from wavforge.core import clock, ids, source_peaks
from wavforge.core.context import Context
from wavforge.core.records import MusicRecord, music_record
from wavforge.db.models import MusicTask, Track
from wavforge.errors import InvalidRequest, NotFound

IMPORT_KIND = "IMPORT"
IMPORT_STATUS = "SUCCESS"
FORMAT_SUFFIX = {"mp3": ".mp3", "flac": ".flac", "wav": ".wav", "ogg": ".ogg", "aiff": ".aiff"}


@dataclass(frozen=True)
class StagedFile:
    """A complete upload or download in the scratch directory, owned by the import."""

    path: Path
    filename: str


@dataclass(frozen=True)
class ImportMeta:
    title: str | None = None
    tags: str = ""
    prompt: str = ""


def import_files(
    ctx: Context, account_id: str, files: list[StagedFile], meta: ImportMeta
) -> MusicRecord:
    try:
        checked = [(staged, _probe(ctx, staged)) for staged in files]
        return _store(ctx, account_id, checked, meta)
    finally:
        for staged in files:
            staged.path.unlink(missing_ok=True)


def _probe(ctx: Context, staged: StagedFile) -> audio.AudioInfo:
    try:
        return ctx.prober.probe(staged.path)
    except audio.AudioError as error:
        raise InvalidRequest(f"{_display(staged.filename)}: {error}") from None


def _store(
    ctx: Context,
    account_id: str,
    checked: list[tuple[StagedFile, audio.AudioInfo]],
    meta: ImportMeta,
) -> MusicRecord:
    created = clock.now()
    task = MusicTask(
        id=ids.task_id(),
        account_id=account_id,
        kind=IMPORT_KIND,
        status=IMPORT_STATUS,
        params={"title": meta.title, "tags": meta.tags, "prompt": meta.prompt},
        created_at=created,
    )
    tracks = [
        _track(task, position, staged, info, meta, len(checked))
        for position, (staged, info) in enumerate(checked)
    ]
    stored: list[str] = []
    try:
        for track, (staged, _) in zip(tracks, checked, strict=True):
            ctx.storage.put(track.source_key, staged.path)
            stored.append(track.source_key)
        with ctx.db.write() as session:
            session.add(task)
            session.flush()
            session.add_all(tracks)
            session.flush()
            measured = source_peaks.add_jobs(ctx, session, tracks)
    except BaseException:
        for key in stored:
            ctx.storage.delete(key)
        raise
    source_peaks.dispatch(ctx, measured)
    return music_record(task, tracks, ctx.links, ctx.settings.retention_seconds)


def _track(
    task: MusicTask,
    position: int,
    staged: StagedFile,
    info: audio.AudioInfo,
    meta: ImportMeta,
    count: int,
) -> Track:
    track_id = ids.audio_id()
    return Track(
        id=track_id,
        music_task_id=task.id,
        account_id=task.account_id,
        position=position,
        title=_title(meta, info, staged, position, count)[:400],
        tags=meta.tags,
        prompt=meta.prompt,
        duration=round(info.duration, 3),
        source_key=f"sources/{track_id}{_suffix(staged, info)}",
        source_name=_display(staged.filename)[:300],
        source_format=info.format_name[:40],
        source_codec=info.codec[:40],
        sample_rate=info.sample_rate,
        channels=info.channels,
        created_at=task.created_at,
        source_sha256=sha256_of(staged.path),
    )


def sha256_of(path: Path) -> str:
    """The file's SHA-256; it was just written, so it is read back from the page cache."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _title(
    meta: ImportMeta, info: audio.AudioInfo, staged: StagedFile, position: int, count: int
) -> str:
    if meta.title:
        return meta.title if count == 1 else f"{meta.title} {position + 1}"
    return info.tags.get("title") or Path(_display(staged.filename)).stem or "Untitled"


def _suffix(staged: StagedFile, info: audio.AudioInfo) -> str:
    suffix = Path(staged.filename).suffix.lower()
    if re.fullmatch(r"\.[a-z0-9]{1,5}", suffix):
        return suffix
    return FORMAT_SUFFIX.get(info.format_name.split(",")[0], ".audio")


def _display(filename: str) -> str:
    """The name a client gave, stripped of any directory part and control characters."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    return re.sub(r"[\x00-\x1f\x7f]", "", name) or "upload"


def get_music(ctx: Context, account_id: str, task_id: str) -> MusicRecord:
    with ctx.db.read() as session:
        task = session.scalar(
            select(MusicTask).where(MusicTask.id == task_id, MusicTask.account_id == account_id)
        )
        if task is None:
            raise NotFound(f"no music task {task_id!r}")
        tracks = session.scalars(
            select(Track)
            .where(Track.music_task_id == task.id, Track.deleted_at.is_(None))
            .order_by(Track.position)
        ).all()
    return music_record(task, list(tracks), ctx.links, ctx.settings.retention_seconds)
