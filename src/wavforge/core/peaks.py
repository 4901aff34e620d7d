"""Waveform peaks as stored files: a WAV's and a source's, each beside its audio, read by its
owner, deleted with it.

Both are BBC audiowaveform JSON (version 2, 8 bits), stored under the audio's key with
``.peaks.json`` for its suffix: ``wav/<task>.peaks.json`` beside ``wav/<task>.wav``, and
``sources/<track>.peaks.json`` beside ``sources/<track>.mp3`` (or whatever the source's
suffix). A conversion measures a WAV's (``audio.peaks``); a background job measures a
source's after its import (``core.source_peaks``). They live and die with their audio:
every place that deletes a WAV or a source deletes them through :func:`delete_wav` or
:func:`delete_source`, and the orphan reaper treats them as part of their audio. Audio stored
before its peaks were measured has none: reading them answers 404.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from wavforge.core import wav_tasks
from wavforge.core.context import Context
from wavforge.db.models import Track
from wavforge.errors import NotFound
from wavforge.storage import StorageMissing

if TYPE_CHECKING:
    from wavforge.audio import Waveform

__all__ = [
    "PEAKS_SUFFIX",
    "SOURCE_PREFIX",
    "WAV_SUFFIX",
    "delete_source",
    "delete_wav",
    "peaks_key",
    "read",
    "read_source",
    "source_peaks_key",
    "store",
    "wav_key",
]

WAV_PREFIX = "wav/"
WAV_SUFFIX = ".wav"
SOURCE_PREFIX = "sources/"
PEAKS_SUFFIX = ".peaks.json"
# Far above any stored document (4,096 pixels x 8 channels x 2 values x 5 bytes ~ 330 KB).
MAX_DOCUMENT_BYTES = 4 << 20


def wav_key(task_id: str) -> str:
    """Where a task's WAV is stored."""
    return f"{WAV_PREFIX}{task_id}{WAV_SUFFIX}"


def peaks_key(wav: str) -> str:
    """Where the peaks of the WAV stored under ``wav`` are."""
    return wav.removesuffix(WAV_SUFFIX) + PEAKS_SUFFIX


def source_peaks_key(source: str) -> str:
    """Where the peaks of the source stored under ``source`` are: its key with
    ``.peaks.json`` for its suffix (``sources/<track>.mp3`` → ``sources/<track>.peaks.json``)."""
    folder, _, name = source.rpartition("/")
    stem = name.rsplit(".", 1)[0] if "." in name else name
    return f"{folder}/{stem}{PEAKS_SUFFIX}" if folder else f"{stem}{PEAKS_SUFFIX}"


def store(ctx: Context, key: str, waveform: Waveform, scratch: Path) -> None:
    """Store a waveform's peaks under ``key`` (nothing when it has none)."""
    document = waveform.document()
    if document is None:
        return
    scratch.write_text(json.dumps(document, separators=(",", ":")), encoding="ascii")
    try:
        ctx.storage.put(key, scratch)
    finally:
        scratch.unlink(missing_ok=True)


def delete_wav(ctx: Context, wav: str) -> None:
    """Delete a WAV and its peaks (the peaks first: a WAV never outlives them half-deleted)."""
    ctx.storage.delete(peaks_key(wav))
    ctx.storage.delete(wav)


def delete_source(ctx: Context, source: str) -> None:
    """Delete a source and its peaks (the peaks first, as :func:`delete_wav` does)."""
    ctx.storage.delete(source_peaks_key(source))
    ctx.storage.delete(source)


def read(ctx: Context, account_id: str, task_id: str) -> dict[str, Any]:
    """The peaks of the account's WAV task, as stored; 404 for a task of another account, one
    whose WAV is gone or not made yet, or a WAV made before peaks were measured."""
    record = wav_tasks.get_wav(ctx, account_id, task_id)
    if record.wav_url is None:
        raise NotFound(f"WAV task {task_id!r} has no WAV file, so no waveform peaks")
    missing = f"WAV task {task_id!r} has no waveform peaks (made before they were kept)"
    return _document(ctx, peaks_key(wav_key(task_id)), missing)


def read_source(ctx: Context, account_id: str, track_id: str) -> dict[str, Any]:
    """The peaks of the account's track's source, as stored; 404 for a track of another
    account or a deleted one, and while there are none: not measured yet (they follow the
    import by a moment), not measurable, or imported before sources were measured."""
    with ctx.db.read() as session:
        source = session.scalar(
            select(Track.source_key).where(
                Track.id == track_id, Track.account_id == account_id, Track.deleted_at.is_(None)
            )
        )
    if not source:
        raise NotFound(f"no track {track_id!r}")
    missing = f"track {track_id!r} has no waveform peaks (not measured yet, or not measurable)"
    return _document(ctx, source_peaks_key(source), missing)


def _document(ctx: Context, key: str, missing: str) -> dict[str, Any]:
    """The stored document under ``key``; 404 with ``missing`` when there is none."""
    size = ctx.storage.size(key)
    if size is None or size > MAX_DOCUMENT_BYTES:
        raise NotFound(missing)
    try:
        raw = b"".join(ctx.storage.open_range(key, 0, size - 1))
    except (StorageMissing, FileNotFoundError):  # purged between the two calls
        raise NotFound(missing) from None
    document: dict[str, Any] = json.loads(raw)
    return document
