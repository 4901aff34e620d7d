"""The callback outbox: a delivery row is written in the same transaction as the state change
it announces, and a worker sends it afterwards. A crash in between loses nothing: the sweep
re-sends, with the same delivery id."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from wavforge.core import clock, ids
from wavforge.core.context import Context
from wavforge.core.leases import claim_delivery, worker_identity
from wavforge.core.records import WavRecord
from wavforge.core.states import DeliveryStatus
from wavforge.db.models import Delivery, DeliveryAttempt
from wavforge.outbound.post import Attempt, post_json

log = logging.getLogger(__name__)


def enqueue_event(ctx: Context, session: Session, record: WavRecord, account_id: str) -> str | None:
    """Add the callback for ``record`` to the outbox, if it has a callback URL."""
    if not record.callback_url:
        return None
    now = clock.now()
    delivery = Delivery(
        id=ids.prefixed("msg"),
        wav_task_id=record.id,
        account_id=account_id,
        url=record.callback_url,
        payload=ctx.callback_bodies[record.dialect](record),
        status=DeliveryStatus.PENDING,
        attempts=0,
        dispatched_at=now,
        created_at=now,
    )
    session.add(delivery)
    return delivery.id


def run(ctx: Context, delivery_id: str) -> None:
    """Send one delivery if it is still due and nobody else holds it."""
    owner = worker_identity()
    with ctx.db.write() as session:
        if not claim_delivery(session, delivery_id, owner, ctx.settings.callback_timeout * 2):
            return
        delivery = session.get_one(Delivery, delivery_id)
        url, payload = delivery.url, delivery.payload
    started = clock.now()
    attempt = post_json(
        url,
        payload,
        timeout=ctx.settings.callback_timeout,
        headers={},
        allow_private=ctx.settings.callback_allow_private,
    )
    _record(ctx, delivery_id, owner, started, attempt)


def _record(
    ctx: Context, delivery_id: str, owner: str, started: datetime, attempt: Attempt
) -> None:
    status = DeliveryStatus.DELIVERED if attempt.delivered else DeliveryStatus.FAILED
    now = clock.now()
    with ctx.db.write() as session:
        session.add(
            DeliveryAttempt(
                delivery_id=delivery_id,
                started_at=started,
                duration_ms=attempt.duration_ms,
                status_code=attempt.status_code,
                error=attempt.error,
            )
        )
        session.execute(
            update(Delivery)
            .where(Delivery.id == delivery_id, Delivery.lease_owner == owner)
            .values(
                status=status,
                attempts=Delivery.attempts + 1,
                lease_owner=None,
                lease_expires_at=None,
                delivered_at=now if attempt.delivered else None,
            )
        )
    log.info("delivery %s: %s", delivery_id, attempt.status_code or attempt.error)
