"""What an account may ask of its webhooks besides the task callbacks: a signed test event to
a URL of its choice, and sending one of its deliveries again.

Both go through the outbox (``core/deliveries.py``) like any callback: a row written first,
then a sender woken; the sweep sends it should that wake-up be lost. A resend keeps the
delivery's id, so it carries the same ``webhook-id`` with a fresh timestamp and signature.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from wavforge.core import clock, deliveries, ids
from wavforge.core.context import Context
from wavforge.core.states import DeliveryStatus
from wavforge.db.models import Delivery
from wavforge.errors import Conflict, InvalidRequest, NotFound, TooFrequent

log = logging.getLogger(__name__)

MAX_TRIES = 50  # a delivery's tries in all, resends included: the log stays bounded
# Test events cost nothing, so an account may have only a few on their way at once: the
# server cannot be made a free relay of signed POSTs to someone else's URL.
MAX_PENDING_TESTS = 5


def test_event_body(webhook_id: str, at: datetime) -> dict[str, object]:
    """The documented body of a test event (docs/api.md, "Test events")."""
    return {
        "type": "test",
        "code": 200,
        "msg": "wavforge test event",
        "data": {"test": True, "webhookId": webhook_id, "createTime": at.strftime(_TIME)},
    }


_TIME = "%Y-%m-%d %H:%M:%S"


def send_test(ctx: Context, account_id: str, url: str) -> str:
    """Queue a signed test event to ``url`` (checked as a request's callback URL is); returns
    its webhook id. May ask DNS: call it from a thread, not an event loop."""
    if not url.strip():
        raise InvalidRequest("url is required: where to send the test event")
    deliveries.check_callback_url(ctx, url)
    now = clock.now()
    webhook_id = ids.prefixed("msg")
    with ctx.db.write() as session:
        _check_pending_tests(session, account_id)
        session.add(
            Delivery(
                id=webhook_id,
                wav_task_id=None,
                kind=deliveries.TEST_EVENT,
                account_id=account_id,
                url=url,
                payload=test_event_body(webhook_id, now),
                dialect=None,  # the default dialect's retry schedule
                status=DeliveryStatus.PENDING,
                attempts=0,
                dispatched_at=now,
                created_at=now,
            )
        )
    _wake(ctx, webhook_id)
    return webhook_id


def _check_pending_tests(session: Session, account_id: str) -> None:
    pending = session.scalar(
        select(func.count())
        .select_from(Delivery)
        .where(
            Delivery.account_id == account_id,
            Delivery.kind == deliveries.TEST_EVENT,
            Delivery.status == DeliveryStatus.PENDING,
        )
    )
    if (pending or 0) >= MAX_PENDING_TESTS:
        raise TooFrequent(
            f"{MAX_PENDING_TESTS} test events are still on their way; wait for one to end",
            headers={"Retry-After": "60"},
        )


def resend(ctx: Context, account_id: str, webhook_id: str) -> None:
    """Send one of the account's deliveries again now, whatever became of it.

    404 for a delivery that is not the account's; 409 while a try of it is on its way or
    once it has had ``MAX_TRIES``. A resend that fails is retried on what remains of the
    schedule (none, after the last).
    """
    now = clock.now()
    with ctx.db.write() as session:
        row = session.scalar(
            select(Delivery).where(Delivery.id == webhook_id, Delivery.account_id == account_id)
        )
        if row is None:
            raise NotFound(f"no delivery {webhook_id!r}")
        if row.attempts >= MAX_TRIES:
            raise Conflict(f"this delivery has been tried {MAX_TRIES} times; send a test event")
        taken = session.execute(
            update(Delivery)
            .where(
                Delivery.id == webhook_id,
                or_(Delivery.lease_expires_at.is_(None), Delivery.lease_expires_at < now),
            )
            .values(status=DeliveryStatus.PENDING, next_attempt_at=None, dispatched_at=now)
        )
        if not taken.rowcount:  # type: ignore[attr-defined]
            raise Conflict("a try of this delivery is being sent right now")
    _wake(ctx, webhook_id)


def _wake(ctx: Context, webhook_id: str) -> None:
    try:
        ctx.dispatch.deliver(webhook_id)
    except Exception:
        log.exception("could not wake a sender for %s; the sweep will", webhook_id)
