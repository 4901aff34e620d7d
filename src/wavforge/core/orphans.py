"""Stored files that no record will ever point to, and what interrupted writes left behind.

A WAV is stored under ``wav/<task id>.wav`` (its peaks beside it, ``wav/<task id>.peaks.json``)
before the task is marked done, so a worker that dies in between, or that lost its lease and
then failed, can leave files for a task that ended without them. Such a file is an orphan only
once its task is finished and points elsewhere: a task still pending or running may yet claim
it, so it is left alone. Peaks belong to their WAV: they are orphans when it is not the task's.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass

from sqlalchemy import select

from wavforge.core import telemetry
from wavforge.core.context import Context
from wavforge.core.peaks import PEAKS_SUFFIX, WAV_PREFIX, WAV_SUFFIX, peaks_key
from wavforge.core.states import WavStatus
from wavforge.core.telemetry import PurgeKind
from wavforge.db.models import WavTask

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
    orphans = 0
    keys = ctx.storage.keys(WAV_PREFIX)
    while batch := list(itertools.islice(keys, BATCH)):
        for key in _orphans(ctx, batch):
            ctx.storage.delete(key)
            telemetry.events().purged(PurgeKind.ORPHAN_WAV, 1)
            orphans += 1
    partial = ctx.storage.discard_partial(PARTIAL_AGE_SECONDS)
    telemetry.events().purged(PurgeKind.PARTIAL_WRITE, partial)
    if orphans or partial:
        log.info("deleted %d orphan files and %d interrupted writes", orphans, partial)
    return ReapResult(orphans_deleted=orphans, partial_writes_discarded=partial)


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
