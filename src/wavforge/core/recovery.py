"""The sweep: hands lost work back to the queue; and the hand-back of a stopping worker.

The queue may drop a message (a worker killed mid-task, a crash between commit and enqueue),
so every so often a worker re-dispatches rows whose lease ran out or that were never picked
up: conversions, sources' peaks jobs (the same claim columns) and deliveries. Dispatching
twice is harmless: claims are guarded. Sweepers on several machines skip rows another
sweeper has locked (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite has one
writer at a time anyway).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, and_, or_, select, update

from wavforge.core import clock
from wavforge.core.context import Context
from wavforge.core.leases import Claimable
from wavforge.core.states import DeliveryStatus, WavStatus
from wavforge.db.models import Delivery, PeaksJob, WavTask

log = logging.getLogger(__name__)
BATCH = 500


@dataclass(frozen=True)
class SweepResult:
    conversions: int
    deliveries: int
    peaks: int = 0


def sweep(ctx: Context) -> SweepResult:
    now = clock.now()
    stale = now - timedelta(seconds=ctx.settings.lease_seconds)
    wav_ids = _redispatch(ctx, WavTask, now, stale)
    peaks_ids = _redispatch(ctx, PeaksJob, now, stale)
    delivery_ids = _redispatch_deliveries(ctx, now, stale)
    for task_id in wav_ids:
        ctx.dispatch.convert(task_id)
    for delivery_id in delivery_ids:
        ctx.dispatch.deliver(delivery_id)
    for track_id in peaks_ids:
        ctx.dispatch.measure_peaks(track_id)
    if wav_ids or delivery_ids or peaks_ids:
        log.info(
            "sweep re-dispatched %d conversions, %d deliveries, %d peaks jobs",
            len(wav_ids),
            len(delivery_ids),
            len(peaks_ids),
        )
    return SweepResult(len(wav_ids), len(delivery_ids), len(peaks_ids))


def _redispatch(ctx: Context, table: Claimable, now: datetime, stale: datetime) -> list[str]:
    """Rows of ``table`` whose worker died, or whose message never woke one."""
    lost = or_(
        and_(table.status == WavStatus.RUNNING, table.lease_expires_at < now),
        and_(table.status == WavStatus.PENDING, table.dispatched_at < stale),
    )
    with ctx.db.write() as session:
        ids = list(session.scalars(_locking(select(table.id).where(lost))))
        if ids:
            session.execute(update(table).where(table.id.in_(ids)).values(dispatched_at=now))
    return ids


def _redispatch_deliveries(ctx: Context, now: datetime, stale: datetime) -> list[str]:
    lost = and_(
        Delivery.status == DeliveryStatus.PENDING,
        or_(
            Delivery.lease_expires_at < now,
            and_(Delivery.lease_expires_at.is_(None), Delivery.dispatched_at < stale),
        ),
    )
    with ctx.db.write() as session:
        ids = list(session.scalars(_locking(select(Delivery.id).where(lost))))
        if ids:
            session.execute(update(Delivery).where(Delivery.id.in_(ids)).values(dispatched_at=now))
    return ids


def _locking(query: Select[str]) -> Select[str]:
    return query.limit(BATCH).with_for_update(skip_locked=True)


def hand_back(ctx: Context, owner_prefix: str) -> list[str]:
    """Give this process's running conversions (and peaks jobs) back to the queue, for
    another worker; returns the conversions' ids.

    Used when a stopping worker's grace period runs out. The attempt does not count (nothing
    failed); the work still running here notices at its next lease renewal and stops
    without touching the row, which by then belongs to the queue again.
    """
    ids = _hand_back(ctx, WavTask, owner_prefix, progress=0.0)
    for task_id in ids:
        ctx.dispatch.convert(task_id)
    for track_id in _hand_back(ctx, PeaksJob, owner_prefix):
        ctx.dispatch.measure_peaks(track_id)
    return ids


def _hand_back(ctx: Context, table: Claimable, owner_prefix: str, **values: object) -> list[str]:
    mine = and_(
        table.status == WavStatus.RUNNING,
        table.lease_owner.startswith(owner_prefix, autoescape=True),
    )
    with ctx.db.write() as session:
        ids = list(session.scalars(_locking(select(table.id).where(mine))))
        if ids:
            session.execute(
                update(table)
                .where(table.id.in_(ids), mine)
                .values(
                    status=WavStatus.PENDING,
                    lease_owner=None,
                    lease_expires_at=None,
                    attempts=table.attempts - 1,
                    dispatched_at=clock.now(),
                    **values,
                )
            )
    return ids
