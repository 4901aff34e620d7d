"""A WAV's waveform peaks: stored beside the WAV, read by its owner, deleted with it.

The conversion measures them (``audio.peaks``) and stores them as BBC audiowaveform JSON
(version 2, 8 bits) under the WAV's key with ``.peaks.json`` for ``.wav``. They live and die
with the WAV: every place that deletes a WAV deletes them through :func:`delete_wav`, and the
orphan reaper treats them as part of their WAV. A WAV made before peaks were measured has
none: reading them answers 404, and converting the track again makes them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wavforge.core import wav_tasks
from wavforge.core.context import Context
from wavforge.errors import NotFound
from wavforge.storage import StorageMissing

if TYPE_CHECKING:
    from wavforge.audio import ConversionResult

__all__ = ["PEAKS_SUFFIX", "WAV_SUFFIX", "delete_wav", "peaks_key", "read", "store", "wav_key"]

WAV_PREFIX = "wav/"
WAV_SUFFIX = ".wav"
PEAKS_SUFFIX = ".peaks.json"
# Far above any stored document (4,096 pixels x 8 channels x 2 values x 5 bytes ~ 330 KB).
MAX_DOCUMENT_BYTES = 4 << 20


def wav_key(task_id: str) -> str:
    """Where a task's WAV is stored."""
    return f"{WAV_PREFIX}{task_id}{WAV_SUFFIX}"


def peaks_key(wav: str) -> str:
    """Where the peaks of the WAV stored under ``wav`` are."""
    return wav.removesuffix(WAV_SUFFIX) + PEAKS_SUFFIX


def store(ctx: Context, wav: str, result: ConversionResult, scratch: Path) -> None:
    """Store the conversion's peaks beside its WAV (nothing when it measured none)."""
    if result.peaks is None:
        return
    document = result.peaks.audiowaveform(result.sample_rate)
    scratch.write_text(json.dumps(document, separators=(",", ":")), encoding="ascii")
    try:
        ctx.storage.put(peaks_key(wav), scratch)
    finally:
        scratch.unlink(missing_ok=True)


def delete_wav(ctx: Context, wav: str) -> None:
    """Delete a WAV and its peaks (the peaks first: a WAV never outlives them half-deleted)."""
    ctx.storage.delete(peaks_key(wav))
    ctx.storage.delete(wav)


def read(ctx: Context, account_id: str, task_id: str) -> dict[str, Any]:
    """The peaks of the account's WAV task, as stored; 404 for a task of another account, one
    whose WAV is gone or not made yet, or a WAV made before peaks were measured."""
    record = wav_tasks.get_wav(ctx, account_id, task_id)
    if record.wav_url is None:
        raise NotFound(f"WAV task {task_id!r} has no WAV file, so no waveform peaks")
    key = peaks_key(wav_key(task_id))
    size = ctx.storage.size(key)
    if size is None or size > MAX_DOCUMENT_BYTES:
        raise NotFound(f"WAV task {task_id!r} has no waveform peaks (made before they were kept)")
    try:
        raw = b"".join(ctx.storage.open_range(key, 0, size - 1))
    except (StorageMissing, FileNotFoundError):  # purged between the two calls
        raise NotFound(f"WAV task {task_id!r} has no waveform peaks") from None
    document: dict[str, Any] = json.loads(raw)
    return document
