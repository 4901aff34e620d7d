"""Retention (CONTRACT §7): WAV files are deleted when they expire; their records stay.

wavforge does this itself rather than trusting storage lifecycle rules, which act hours late.
Links already answer 410 from the expiry time on; the purge frees the disk. Each file is
deleted *before* its row forgets the key, so a purge killed at any point leaves only rows that
the next run finishes (deleting a missing file is not an error), and the query selects expired
rows only, so a live file is never touched.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update

from wavforge.core import clock, deletion, idempotency, peaks, scratch, telemetry
from wavforge.core.context import Context
from wavforge.core.states import WITH_FILE, DeliveryStatus
from wavforge.core.telemetry import PurgeKind
from wavforge.db.models import Delivery, DeliveryAttempt, WavTask
from wavforge.storage import StorageError

log = logging.getLogger(__name__)
BATCH = 100


@dataclass(frozen=True)
class PurgeResult:
    files_deleted: int
    idempotency_keys_deleted: int
    stale_files_deleted: int = 0
    expired_tracks_deleted: int = 0
    deliveries_deleted: int = 0


def purge(ctx: Context, now: datetime | None = None) -> PurgeResult:
    """Delete every WAV file that expired by ``now``, idempotency keys past their time, and
    files that dead processes left in the scratch directory."""
    now = now or clock.now()
    deleted, after = 0, ""
    while batch := _expired(ctx, now, after):
        gone = [task_id for task_id, key in batch if _delete(ctx, task_id, key)]
        _forget(ctx, gone, now)
        telemetry.events().purged(PurgeKind.EXPIRED_WAV, len(gone))  # counted once the rows say so
        deleted += len(gone)
        after = batch[-1][0]
    keys = idempotency.purge(ctx.db, now)
    telemetry.events().purged(PurgeKind.IDEMPOTENCY_KEY, keys)
    tracks = _expire_sources(ctx, now)
    old_deliveries = _forget_deliveries(
        ctx, now - timedelta(seconds=ctx.settings.retention_seconds)
    )
    deletion.erase(ctx, deletion.unfinished_erasures(ctx))  # deletions cut short
    stale = scratch.sweep(ctx.settings.scratch_dir, ctx.settings.scratch_idle_seconds)
    if deleted or keys:
        log.info("purge deleted %d expired files and %d idempotency keys", deleted, keys)
    return PurgeResult(
        files_deleted=deleted,
        idempotency_keys_deleted=keys,
        stale_files_deleted=stale,
        expired_tracks_deleted=tracks,
        deliveries_deleted=old_deliveries,
    )


def _forget_deliveries(ctx: Context, before: datetime) -> int:
    """Webhook deliveries (and their tries) made before ``before`` that are no longer
    pending: the delivery log keeps as long as the WAVs it announced."""
    deleted = 0
    while True:
        with ctx.db.write() as session:
            ids = list(
                session.scalars(
                    select(Delivery.id)
                    .where(Delivery.created_at < before, Delivery.status != DeliveryStatus.PENDING)
                    .limit(BATCH)
                )
            )
            if not ids:
                return deleted
            session.execute(delete(DeliveryAttempt).where(DeliveryAttempt.delivery_id.in_(ids)))
            session.execute(delete(Delivery).where(Delivery.id.in_(ids)))
        deleted += len(ids)


def _expire_sources(ctx: Context, now: datetime) -> int:
    """Delete tracks older than ``WAVFORGE_SOURCE_RETENTION_SECONDS``, when it is set."""
    keep = ctx.settings.source_retention_seconds
    if keep is None:
        return 0
    return len(deletion.expire_sources(ctx, now - timedelta(seconds=keep)).track_ids)


def _expired(ctx: Context, now: datetime, after: str) -> list[tuple[str, str]]:
    """The next batch of (task id, file key) past their expiry, in id order."""
    with ctx.db.read() as session:
        rows = session.execute(
            select(WavTask.id, WavTask.wav_key)
            .where(
                WavTask.expires_at <= now,
                WavTask.wav_key.is_not(None),
                WavTask.status.in_(WITH_FILE),
                WavTask.id > after,
            )
            .order_by(WavTask.id)
            .limit(BATCH)
        ).all()
    return [(task_id, key) for task_id, key in rows if key is not None]


def _delete(ctx: Context, task_id: str, key: str) -> bool:
    try:
        peaks.delete_wav(ctx, key)
    except StorageError:
        log.exception("purge could not delete the file of task %s; next run will", task_id)
        return False
    return True


def _forget(ctx: Context, task_ids: list[str], now: datetime) -> None:
    """The records stay, without their file: URL null, track free for a new conversion."""
    if not task_ids:
        return
    with ctx.db.write() as session:
        session.execute(
            update(WavTask)
            .where(WavTask.id.in_(task_ids), WavTask.expires_at <= now)
            .values(wav_key=None, live_track_id=None)
        )
