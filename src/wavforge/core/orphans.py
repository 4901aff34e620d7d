"""Stored files that no record will ever point to, and what interrupted writes left behind.

A WAV is stored under ``wav/<task id>.wav`` (its peaks beside it, ``wav/<task id>.peaks.json``)
before the task is marked done, so a worker that dies in between, or that lost its lease and
then failed, can leave files for a task that ended without them. Such a file is an orphan only
once its task is finished and points elsewhere: a task still pending or running may yet claim
it, so it is left alone. Peaks belong to their WAV: they are orphans when it is not the task's.

A source's peaks (``sources/<track>.peaks.json``) belong to their source the same way: they
are orphans once the track's source is another file or none (deleted), which a peaks job
that ended just as its track was deleted can leave behind. Sources themselves are not
reaped here.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select

from wavforge.core import telemetry
from wavforge.core.context import Context
from wavforge.core.peaks import (
    PEAKS_SUFFIX,
    SOURCE_PREFIX,
    WAV_PREFIX,
    WAV_SUFFIX,
    peaks_key,
    source_peaks_key,
)
from wavforge.core.states import WavStatus
from wavforge.core.telemetry import PurgeKind
from wavforge.db.models import Track, WavTask

log = logging.getLogger(__name__)

BATCH = 500
# An unfinished upload older than this belongs to a process that died (a WAV of the
# largest size uploads in minutes).
PARTIAL_AGE_SECONDS = 3600.0
UNFINISHED = (WavStatus.PENDING, WavStatus.RUNNING)


@dataclass(frozen=True)
class ReapResult:
    orphans_deleted: int
    partial_writes_discarded: int


def reap(ctx: Context) -> ReapResult:
    orphans = _reap(ctx, WAV_PREFIX, _orphans, PurgeKind.ORPHAN_WAV)
    orphans += _reap(ctx, SOURCE_PREFIX, _orphan_source_peaks, PurgeKind.ORPHAN_PEAKS)
    partial = ctx.storage.discard_partial(PARTIAL_AGE_SECONDS)
    telemetry.events().purged(PurgeKind.PARTIAL_WRITE, partial)
    if orphans or partial:
        log.info("deleted %d orphan files and %d interrupted writes", orphans, partial)
    return ReapResult(orphans_deleted=orphans, partial_writes_discarded=partial)


def _reap(
    ctx: Context,
    prefix: str,
    orphans_among: Callable[[Context, list[str]], list[str]],
    kind: PurgeKind,
) -> int:
    """Delete the orphans among the keys under ``prefix``, a batch at a time."""
    deleted = 0
    keys = ctx.storage.keys(prefix)
    while batch := list(itertools.islice(keys, BATCH)):
        for key in orphans_among(ctx, batch):
            ctx.storage.delete(key)
            telemetry.events().purged(kind, 1)
            deleted += 1
    return deleted


def _orphans(ctx: Context, keys: list[str]) -> list[str]:
    by_task: dict[str, list[str]] = {}
    for key in keys:
        by_task.setdefault(_task_id(key), []).append(key)
    with ctx.db.read() as session:
        rows = session.execute(
            select(WavTask.id, WavTask.status, WavTask.wav_key).where(WavTask.id.in_(by_task))
        ).all()
    return [
        key
        for task_id, status, wav_key in rows
        if status not in UNFINISHED
        for key in by_task[task_id]
        if wav_key is None or key not in (wav_key, peaks_key(wav_key))
    ]


def _task_id(key: str) -> str:
    name = key.removeprefix(WAV_PREFIX)
    if name.endswith(PEAKS_SUFFIX):
        return name.removesuffix(PEAKS_SUFFIX)
    return name.removesuffix(WAV_SUFFIX)


def _orphan_source_peaks(ctx: Context, keys: list[str]) -> list[str]:
    """Source peaks whose track no longer has that source (sources themselves are skipped)."""
    by_track = {
        key.removeprefix(SOURCE_PREFIX).removesuffix(PEAKS_SUFFIX): key
        for key in keys
        if key.endswith(PEAKS_SUFFIX)
    }
    if not by_track:
        return []
    with ctx.db.read() as session:
        rows = session.execute(
            select(Track.id, Track.source_key).where(Track.id.in_(by_track))
        ).all()
    return [
        by_track[track_id]
        for track_id, source in rows
        if not source or source_peaks_key(source) != by_track[track_id]
    ]
