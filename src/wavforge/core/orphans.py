"""Stored files that no record will ever point to, and what interrupted writes left behind.

A WAV is stored under ``wav/<task id>.wav`` before the task is marked done, so a worker that
dies in between, or that lost its lease and then failed, can leave a file for a task that
ended without it. Such a file is an orphan only once its task is finished and points
elsewhere: a task still pending or running may yet claim it, so it is left alone.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass

from sqlalchemy import select

from wavforge.core import telemetry
from wavforge.core.context import Context
from wavforge.core.states import WavStatus
from wavforge.core.telemetry import PurgeKind
from wavforge.db.models import WavTask

log = logging.getLogger(__name__)

WAV_PREFIX = "wav/"
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
    by_task = {_task_id(key): key for key in keys}
    with ctx.db.read() as session:
        rows = session.execute(
            select(WavTask.id, WavTask.status, WavTask.wav_key).where(WavTask.id.in_(by_task))
        ).all()
    return [
        by_task[task_id]
        for task_id, status, wav_key in rows
        if status not in UNFINISHED and wav_key != by_task[task_id]
    ]


def _task_id(key: str) -> str:
    return key.removeprefix(WAV_PREFIX).removesuffix(".wav")
