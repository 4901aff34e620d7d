"""Guarded claims on rows that workers compete for.

A claim is one UPDATE whose WHERE clause states the expected state, so exactly one worker wins
it whatever the queue does (duplicate, late or replayed messages); the winner renews its lease
while it works, and a lease that runs out frees the row for the sweep.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from datetime import timedelta

from sqlalchemy import ColumnElement, or_, update
from sqlalchemy.orm import Session

from wavforge.core import clock
from wavforge.core.states import DeliveryStatus, WavStatus
from wavforge.db.models import Delivery, WavTask


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
    now = clock.now()
    expired = (WavTask.status == WavStatus.RUNNING) & (WavTask.lease_expires_at < now)
    return _claim(
        session, task_id, owner, lease_seconds, or_(WavTask.status == WavStatus.PENDING, expired)
    )


def claim_expired(session: Session, task_id: str, owner: str, lease_seconds: float) -> bool:
    """Claim a task only if it was running and its worker's lease ran out."""
    now = clock.now()
    expired = (WavTask.status == WavStatus.RUNNING) & (WavTask.lease_expires_at < now)
    return _claim(session, task_id, owner, lease_seconds, expired)


def _claim(
    session: Session, task_id: str, owner: str, lease_seconds: float, claimable: ColumnElement[bool]
) -> bool:
    now = clock.now()
    result = session.execute(
        update(WavTask)
        .where(WavTask.id == task_id, claimable)
        .values(
            status=WavStatus.RUNNING,
            lease_owner=owner,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
            attempts=WavTask.attempts + 1,
            started_at=now,
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def renew_wav(
    session: Session, task_id: str, owner: str, lease_seconds: float, progress: float
) -> None:
    result = session.execute(
        update(WavTask)
        .where(
            WavTask.id == task_id, WavTask.lease_owner == owner, WavTask.status == WavStatus.RUNNING
        )
        .values(lease_expires_at=clock.later(lease_seconds), progress=progress)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        raise LeaseLost(task_id)


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
