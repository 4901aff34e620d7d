"""The delivery log a task's owner can read: every callback attempt, as it happened."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from wavforge.core.context import Context
from wavforge.db.models import Delivery, DeliveryAttempt, WavTask
from wavforge.errors import NotFound


@dataclass(frozen=True)
class AttemptRecord:
    started_at: datetime
    duration_ms: int
    status_code: int | None
    error: str | None


@dataclass(frozen=True)
class DeliveryRecord:
    id: str  # also the webhook-id header of every attempt
    url: str
    status: str
    next_attempt_at: datetime | None
    attempts: list[AttemptRecord]


def for_task(ctx: Context, account_id: str, task_id: str) -> list[DeliveryRecord]:
    """The task's deliveries, oldest first; 404 unless the task is the account's."""
    with ctx.db.read() as session:
        owned = session.scalar(
            select(WavTask.id).where(WavTask.id == task_id, WavTask.account_id == account_id)
        )
        if owned is None:
            raise NotFound(f"no WAV task {task_id!r}")
        deliveries = session.scalars(
            select(Delivery).where(Delivery.wav_task_id == task_id).order_by(Delivery.created_at)
        ).all()
        attempts = session.scalars(
            select(DeliveryAttempt)
            .where(DeliveryAttempt.delivery_id.in_([d.id for d in deliveries]))
            .order_by(DeliveryAttempt.id)
        ).all()
    return [
        DeliveryRecord(
            id=d.id,
            url=d.url,
            status=d.status,
            next_attempt_at=d.next_attempt_at,
            attempts=[_attempt(a) for a in attempts if a.delivery_id == d.id],
        )
        for d in deliveries
    ]


def _attempt(row: DeliveryAttempt) -> AttemptRecord:
    return AttemptRecord(row.started_at, row.duration_ms, row.status_code, row.error)
