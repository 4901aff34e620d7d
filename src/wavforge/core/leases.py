"""Guarded claims on rows that workers compete for.

A claim is one UPDATE whose WHERE clause states the expected state, so exactly one worker wins
it whatever the queue does (duplicate, late or replayed messages); the winner renews its lease
while it works, and a lease that runs out frees the row for the sweep.

Conversions (``WavTask``) and a source's peaks jobs (``PeaksJob``) are claimed alike: both
tables have the same claim columns, passed here as ``table``.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import TypeAlias

from sqlalchemy import ColumnElement, or_, update
from sqlalchemy.orm import Session

from wavforge.core import clock
from wavforge.core.context import Context
from wavforge.core.states import DeliveryStatus, WavStatus
from wavforge.db.models import Delivery, PeaksJob, WavTask

Claimable: TypeAlias = type[WavTask] | type[PeaksJob]  # tables whose rows workers claim

RENEW_EVERY_SECONDS = 2.0


class LeaseLost(Exception):
    """Another worker owns the row now; stop without touching it."""


# Told apart from an earlier process that had the same pid (containers all start at pid 1).
_PROCESS_TOKEN = uuid.uuid4().hex[:6]


def process_identity() -> str:
    """The start every lease owner of this process shares: ``host:pid:token:``."""
    return f"{socket.gethostname()[:24]}:{os.getpid()}:{_PROCESS_TOKEN}:"


def worker_identity() -> str:
    """Unique per process and thread, readable in the table when debugging."""
    return f"{process_identity()}{threading.get_ident() % 100000}:{uuid.uuid4().hex[:4]}"


def claim_wav(session: Session, task_id: str, owner: str, lease_seconds: float) -> bool:
    """Claim a pending task, or a running one whose lease ran out."""
    return claim(session, task_id, owner, lease_seconds)


def claim(
    session: Session, row_id: str, owner: str, lease_seconds: float, table: Claimable = WavTask
) -> bool:
    """Claim a pending row of ``table``, or a running one whose lease ran out."""
    pending = table.status == WavStatus.PENDING
    return _claim(session, table, row_id, owner, lease_seconds, or_(pending, _expired(table)))


def claim_expired(
    session: Session, task_id: str, owner: str, lease_seconds: float, table: Claimable = WavTask
) -> bool:
    """Claim a row only if it was running and its worker's lease ran out."""
    return _claim(session, table, task_id, owner, lease_seconds, _expired(table))


def _expired(table: Claimable) -> ColumnElement[bool]:
    return (table.status == WavStatus.RUNNING) & (table.lease_expires_at < clock.now())


def _claim(
    session: Session,
    table: Claimable,
    row_id: str,
    owner: str,
    lease_seconds: float,
    claimable: ColumnElement[bool],
) -> bool:
    now = clock.now()
    result = session.execute(
        update(table)
        .where(table.id == row_id, claimable)
        .values(
            status=WavStatus.RUNNING,
            lease_owner=owner,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
            attempts=table.attempts + 1,
            started_at=now,
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def renew_wav(
    session: Session, task_id: str, owner: str, lease_seconds: float, progress: float
) -> None:
    renew(session, task_id, owner, lease_seconds, WavTask, progress=progress)


def renew(
    session: Session,
    row_id: str,
    owner: str,
    lease_seconds: float,
    table: Claimable,
    **values: object,
) -> None:
    """Extend this owner's lease on a running row (and set ``values``); ``LeaseLost`` when
    the row is no longer this owner's to work on."""
    result = session.execute(
        update(table)
        .where(table.id == row_id, table.lease_owner == owner, table.status == WavStatus.RUNNING)
        .values(lease_expires_at=clock.later(lease_seconds), **values)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        raise LeaseLost(row_id)


def heartbeat(ctx: Context, renew_in: Callable[[Session, float], None]) -> Callable[[float], None]:
    """A progress callback that calls ``renew_in(session, fraction)`` in a write transaction
    a few times a minute; the converter calls it at least every second, even from a silent
    child, and it raises ``LeaseLost`` into the converter, which then stops the child."""
    interval = min(RENEW_EVERY_SECONDS, ctx.settings.lease_seconds / 3)
    last = time.monotonic()

    def beat(fraction: float) -> None:
        nonlocal last
        if time.monotonic() - last < interval:
            return
        last = time.monotonic()
        with ctx.db.write() as session:
            renew_in(session, fraction)

    return beat


def claim_delivery(session: Session, delivery_id: str, owner: str, lease_seconds: float) -> bool:
    now = clock.now()
    result = session.execute(
        update(Delivery)
        .where(
            Delivery.id == delivery_id,
            Delivery.status == DeliveryStatus.PENDING,
            or_(Delivery.lease_expires_at.is_(None), Delivery.lease_expires_at < now),
            or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at <= now),
        )
        .values(lease_owner=owner, lease_expires_at=now + timedelta(seconds=lease_seconds))
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
