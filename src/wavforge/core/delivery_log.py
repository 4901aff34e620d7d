"""The delivery log an account can read: every webhook it was sent, every try, as it happened.

A task's deliveries (``for_task``), all of the account's newest first in pages
(``page``: keyset paging on creation time and id behind an opaque cursor, filtered by state
and task, with a count per state), and one delivery in full (``detail``: the body sent, and
per try the headers sent with signatures masked, the answer's status, headers and first
bytes). Another account's delivery or task is a 404, as an unknown one is.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.orm import Session

from wavforge.core.context import Context
from wavforge.core.states import DeliveryStatus
from wavforge.db.models import Delivery, DeliveryAttempt, WavTask
from wavforge.errors import InvalidRequest, NotFound
from wavforge.outbound import canonical_body

MAX_PAGE = 100
STATES = {status.value.lower(): status for status in DeliveryStatus}


@dataclass(frozen=True)
class AttemptRecord:
    started_at: datetime
    duration_ms: int
    status_code: int | None
    error: str | None
    request_headers: list[list[str]] | None = None
    response_headers: list[list[str]] | None = None
    response_body: str | None = None


@dataclass(frozen=True)
class DeliveryRecord:
    id: str  # also the webhook-id header of every attempt
    url: str
    status: str
    next_attempt_at: datetime | None
    attempts: list[AttemptRecord]


@dataclass(frozen=True)
class DeliverySummary:
    id: str
    kind: str
    task_id: str | None
    url: str
    status: str
    tries: int
    next_attempt_at: datetime | None
    created_at: datetime
    delivered_at: datetime | None


@dataclass(frozen=True)
class DeliveryPage:
    deliveries: list[DeliverySummary]
    next_cursor: str | None  # None: this is the last page
    counts: dict[str, int]  # per state, under the task filter but not the state filter


@dataclass(frozen=True)
class DeliveryDetail:
    delivery: DeliverySummary
    body: str  # the exact JSON sent (and signed) on every try
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
        attempts = _attempts(session, [d.id for d in deliveries])
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


def parse_state(text: str | None) -> DeliveryStatus | None:
    """A state filter as the API and console take it (any case); empty: no filter."""
    if not text:
        return None
    try:
        return STATES[text.lower()]
    except KeyError:
        raise InvalidRequest(f"state must be one of {', '.join(STATES)}") from None


def page(
    ctx: Context,
    account_id: str,
    *,
    limit: int = 20,
    cursor: str | None = None,
    state: DeliveryStatus | None = None,
    task_id: str | None = None,
) -> DeliveryPage:
    """The account's deliveries newest first, ``limit`` at a time after ``cursor``."""
    limit = max(1, min(limit, MAX_PAGE))
    mine: list[ColumnElement[bool]] = [Delivery.account_id == account_id]
    if task_id:
        mine.append(Delivery.wav_task_id == task_id)
    query = select(Delivery).where(*mine)
    if state is not None:
        query = query.where(Delivery.status == state)
    if cursor:
        query = _after(query, *_read_cursor(cursor))
    query = query.order_by(Delivery.created_at.desc(), Delivery.id.desc()).limit(limit + 1)
    with ctx.db.read() as session:
        rows = session.scalars(query).all()
        counts = _counts(session, mine)
    shown = [_summary(row) for row in rows[:limit]]
    more = len(rows) > limit
    return DeliveryPage(shown, _cursor(shown[-1]) if more else None, counts)


def detail(ctx: Context, account_id: str, webhook_id: str) -> DeliveryDetail:
    """One of the account's deliveries with every try in full, oldest try first."""
    with ctx.db.read() as session:
        row = session.scalar(
            select(Delivery).where(Delivery.id == webhook_id, Delivery.account_id == account_id)
        )
        if row is None:
            raise NotFound(f"no delivery {webhook_id!r}")
        attempts = _attempts(session, [row.id])
        body = canonical_body(row.payload).decode()
        return DeliveryDetail(_summary(row), body, [_attempt(a) for a in attempts])


def _after(query: Select[Delivery], at: datetime, last_id: str) -> Select[Delivery]:
    return query.where(
        or_(
            Delivery.created_at < at,
            and_(Delivery.created_at == at, Delivery.id < last_id),
        )
    )


def _cursor(last: DeliverySummary) -> str:
    raw = f"{last.created_at.isoformat()}|{last.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _read_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, _, last_id = raw.partition("|")
        if not last_id:
            raise ValueError(cursor)
        return datetime.fromisoformat(at), last_id
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidRequest("cursor is not one this server gave (pass nextCursor)") from None


def _counts(session: Session, mine: list[ColumnElement[bool]]) -> dict[str, int]:
    rows = session.execute(
        select(Delivery.status, func.count()).where(*mine).group_by(Delivery.status)
    ).all()
    counts = {status.value: 0 for status in DeliveryStatus}
    counts.update({status: count for status, count in rows})
    return counts


def _attempts(session: Session, delivery_ids: list[str]) -> list[DeliveryAttempt]:
    return list(
        session.scalars(
            select(DeliveryAttempt)
            .where(DeliveryAttempt.delivery_id.in_(delivery_ids))
            .order_by(DeliveryAttempt.id)
        ).all()
    )


def _summary(row: Delivery) -> DeliverySummary:
    return DeliverySummary(
        id=row.id,
        kind=row.kind,
        task_id=row.wav_task_id,
        url=row.url,
        status=row.status,
        tries=row.attempts,
        next_attempt_at=row.next_attempt_at if row.status == DeliveryStatus.PENDING else None,
        created_at=row.created_at,
        delivered_at=row.delivered_at,
    )


def _attempt(row: DeliveryAttempt) -> AttemptRecord:
    return AttemptRecord(
        row.started_at,
        row.duration_ms,
        row.status_code,
        row.error,
        row.request_headers,
        row.response_headers,
        row.response_body,
    )
