"""The callback outbox: durable, signed, retried deliveries (CONTRACT §6).

A delivery row is written in the same transaction as the state change it announces, and a
worker sends it afterwards. Every try is an attempt row; a failed try schedules the next one
from the dialect's retry schedule (or the receiver's ``Retry-After``), and after the last one
a successful task becomes CALLBACK_EXCEPTION. The row, not the queue, holds the schedule: a
crash or restart at any point loses nothing, because the sweep re-dispatches rows that are
due, and a resend carries the same ``webhook-id`` (the delivery id) with a fresh timestamp.
Each attempt is counted (``wavforge_callback_attempts_total``) once it is recorded.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session

from wavforge.core import clock, ids, telemetry
from wavforge.core.context import Context
from wavforge.core.leases import claim_delivery, worker_identity
from wavforge.core.records import WavRecord
from wavforge.core.states import DeliveryStatus, WavStatus
from wavforge.core.telemetry import CallbackOutcome
from wavforge.db.models import Account, Delivery, DeliveryAttempt, WavTask
from wavforge.outbound import Attempt, canonical_body, check_url, sent_headers, signature_headers

log = logging.getLogger(__name__)

TASK_EVENT = "task"  # a task ended (the vendors' callback)
TEST_EVENT = "test"  # the account asked for a test event
SIGNATURE_HEADERS = frozenset({"webhook-signature", "x-webhook-signature"})
MASK = "****"


def check_callback_url(ctx: Context, url: str) -> None:
    """A callback URL as every front end takes one: shape, length and address rules, with a
    name that does not resolve accepted (each attempt checks again and records why)."""
    check_url(
        url,
        what="callback URL",
        allow_private=ctx.settings.callback_allow_private,
        unresolved_ok=True,
    )


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
        payload=ctx.dialects.named(record.dialect).callback_body(record),
        dialect=record.dialect,
        kind=TASK_EVENT,
        status=DeliveryStatus.PENDING,
        attempts=0,
        dispatched_at=now,
        created_at=now,
    )
    session.add(delivery)
    return delivery.id


@dataclass(frozen=True)
class _Due:
    """What one attempt needs, read under the claim."""

    id: str
    task_id: str
    url: str
    body: bytes
    secrets: list[str]
    attempts: int
    dialect: str | None
    sent: list[list[str]] | None = None  # the request's headers, signatures masked


def masked(headers: dict[str, str]) -> list[list[str]]:
    """Headers as stored and shown: each signature keeps its scheme (``v1,``), not its value."""
    return [
        [name, _mask(value) if name.lower() in SIGNATURE_HEADERS else value]
        for name, value in headers.items()
    ]


def _mask(value: str) -> str:
    return " ".join(
        f"{sig.partition(',')[0]},{MASK}" if "," in sig else MASK for sig in value.split()
    )


def run(ctx: Context, delivery_id: str) -> None:
    """Make one attempt at a delivery if it is due and nobody else holds it."""
    owner = worker_identity()
    with ctx.db.write() as session:
        if not claim_delivery(session, delivery_id, owner, ctx.settings.callback_timeout * 2):
            return
        due = _load(session, delivery_id)
    started = clock.now()
    headers = signature_headers(
        webhook_id=due.id, task_id=due.task_id, body=due.body, secrets=due.secrets, at=started
    )
    due = replace(due, sent=masked(sent_headers(headers)))
    attempt = ctx.post(
        due.url,
        due.body,
        timeout=ctx.settings.callback_timeout,
        headers=headers,
        allow_private=ctx.settings.callback_allow_private,
    )
    retry_in = _record(ctx, due, owner, started, attempt)
    if retry_in is not None:
        ctx.dispatch.deliver(delivery_id, delay=retry_in)


def _load(session: Session, delivery_id: str) -> _Due:
    delivery = session.get_one(Delivery, delivery_id)
    account = session.get_one(Account, delivery.account_id)
    return _Due(
        id=delivery.id,
        task_id=delivery.wav_task_id or delivery.id,  # a test event signs its own id
        url=delivery.url,
        body=canonical_body(delivery.payload),
        secrets=active_secrets(account, clock.now()),
        attempts=delivery.attempts,
        dialect=delivery.dialect,
    )


def active_secrets(account: Account, now: datetime) -> list[str]:
    """The account's signing secrets: the current one, plus the previous during a rotation."""
    secrets = [account.webhook_secret]
    until = account.previous_secret_until
    if account.previous_webhook_secret and until is not None and until > now:
        secrets.append(account.previous_webhook_secret)
    return secrets


def _record(
    ctx: Context, due: _Due, owner: str, started: datetime, attempt: Attempt
) -> float | None:
    """Store the attempt and decide what comes next; returns the delay of a retry, if any."""
    schedule = ctx.dialects.named(due.dialect).retry_schedule(ctx.settings)
    made = due.attempts + 1
    retry_in = None if attempt.delivered or made > len(schedule) else schedule[made - 1]
    if retry_in is not None and attempt.retry_after is not None:
        retry_in = max(retry_in, attempt.retry_after)
    now = clock.now()
    with ctx.db.write() as session:
        session.add(
            DeliveryAttempt(
                delivery_id=due.id,
                started_at=started,
                duration_ms=attempt.duration_ms,
                status_code=attempt.status_code,
                error=attempt.error,
                request_headers=due.sent,
                response_headers=[list(pair) for pair in attempt.response_headers] or None,
                response_body=_preview(attempt),
            )
        )
        values = _next_state(attempt, retry_in, now)
        updated = session.execute(
            update(Delivery)
            .where(Delivery.id == due.id, Delivery.lease_owner == owner)
            .values(
                attempts=Delivery.attempts + 1, lease_owner=None, lease_expires_at=None, **values
            )
        )
        still_ours = bool(updated.rowcount)  # type: ignore[attr-defined]
        if still_ours and values["status"] == DeliveryStatus.FAILED:
            _mark_callback_exception(session, due.task_id, now)
        if still_ours and values["status"] == DeliveryStatus.DELIVERED:
            _clear_callback_exception(session, due.task_id)
    telemetry.events().callback_attempted(_outcome(values["status"], still_ours))
    if not still_ours:
        return None  # our lease ran out and someone else took over
    log.info("delivery %s attempt %d: %s", due.id, made, attempt.status_code or attempt.error)
    return retry_in


def _preview(attempt: Attempt) -> str | None:
    """The answer's first bytes as text; undecodable bytes become U+FFFD, never raw."""
    if attempt.status_code is None:
        return None
    return attempt.response_preview.decode("utf-8", errors="replace").replace("\x00", "\ufffd")


def _outcome(status: object, still_ours: bool) -> CallbackOutcome:
    if not still_ours:
        return CallbackOutcome.LEASE_LOST
    if status == DeliveryStatus.DELIVERED:
        return CallbackOutcome.DELIVERED
    return CallbackOutcome.GAVE_UP if status == DeliveryStatus.FAILED else CallbackOutcome.RETRYING


def _next_state(attempt: Attempt, retry_in: float | None, now: datetime) -> dict[str, object]:
    if attempt.delivered:
        return {"status": DeliveryStatus.DELIVERED, "delivered_at": now, "next_attempt_at": None}
    if retry_in is None:
        return {"status": DeliveryStatus.FAILED, "next_attempt_at": None}
    due_at = now + timedelta(seconds=retry_in)
    # dispatched_at = due time, so the sweep treats it as lost only once it is overdue.
    return {"status": DeliveryStatus.PENDING, "next_attempt_at": due_at, "dispatched_at": due_at}


def _mark_callback_exception(session: Session, task_id: str, now: datetime) -> None:
    """Every attempt failed: a finished conversion says so (its WAV stays downloadable)."""
    session.execute(
        update(WavTask)
        .where(WavTask.id == task_id, WavTask.status == WavStatus.SUCCESS)
        .values(status=WavStatus.CALLBACK_EXCEPTION)
    )


def _clear_callback_exception(session: Session, task_id: str) -> None:
    """A resend got through after every try had failed: the task is a plain success again."""
    session.execute(
        update(WavTask)
        .where(WavTask.id == task_id, WavTask.status == WavStatus.CALLBACK_EXCEPTION)
        .values(status=WavStatus.SUCCESS)
    )
