"""The delivery log an account can read: every webhook it was sent, every try, as it happened.

A task's deliveries (``for_task``); all of the account's newest first in pages (``page``:
keyset paging on creation time and id, as every listing pages in ``core.listing``, searched
by id and filtered by state, date and task, with a count per state); and one delivery in full
(``detail``: the body sent, and per try the headers sent with signatures masked, the answer's
status, headers and first bytes). Another account's delivery or task is a 404, as an unknown one is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session

from wavforge.core import listing
from wavforge.core.context import Context
from wavforge.core.states import DeliveryStatus
from wavforge.db.models import Delivery, DeliveryAttempt, WavTask
from wavforge.errors import NotFound
from wavforge.outbound import canonical_body

MAX_PAGE = listing.MAX_LIMIT
KIND = "deliveries"
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
    counts: dict[str, int]  # per state, under every filter but the state
    prev_cursor: str | None = None  # None: this is the first page
    total: int = 0  # matching every filter, on all pages


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


def page(
    ctx: Context, account_id: str, query: listing.Query, task_id: str | None = None
) -> DeliveryPage:
    """The account's deliveries matching ``query``, newest first: ``search`` is the start of a
    webhook id or a task id, ``status`` a state (any case), ``since``/``until`` the creation
    time; ``task_id`` keeps one task's. The counts per state obey every filter but the state,
    so a filter's tabs say what each would show."""
    mine: list[ColumnElement[bool]] = [Delivery.account_id == account_id]
    if task_id:
        mine.append(Delivery.wav_task_id == task_id)
    if query.search is not None:
        mine.append(
            or_(
                Delivery.id.startswith(query.search, autoescape=True),
                Delivery.wav_task_id.startswith(query.search, autoescape=True),
            )
        )
    if query.since is not None:
        mine.append(Delivery.created_at >= query.since)
    if query.until is not None:
        mine.append(Delivery.created_at < query.until)
    where = [*mine, *([Delivery.status == STATES[query.status]] if query.status else [])]
    found = listing.seek(select(Delivery).where(*where), (Delivery.created_at, Delivery.id), query)
    with ctx.db.read() as session:
        rows = [_summary(row) for row in session.scalars(found).all()]
        counts = _counts(session, mine)
    total = counts[STATES[query.status].value] if query.status else sum(counts.values())
    shown = listing.cut(KIND, rows, query, total, lambda row: (row.created_at, row.id))
    return DeliveryPage(shown.items, shown.next_cursor, counts, shown.prev_cursor, total)


def parse(
    *,
    limit: int | str | None = None,
    cursor: str | None = None,
    q: str | None = None,
    state: str | None = None,
    since: str | None = None,
    until: str | None = None,
) -> listing.Query:
    """A delivery listing request as sent; a bad value is a 400 naming it."""
    return listing.parse(
        KIND,
        limit=limit,
        cursor=cursor,
        q=q,
        status=(state or "").lower() or None,
        statuses=STATES,
        since=since,
        until=until,
    )


def detail(ctx: Context, account_id: str, webhook_id: str) -> DeliveryDetail:
    """One of the account's deliveries with every try in full, oldest try first."""
    with ctx.db.read() as session:
        # The tries first, so the row, read after them, is never older than they are. On
        # PostgreSQL each statement has its own snapshot, and read the other way round a try
        # could show beside the row as it was before that try was recorded (pending, with
        # no next attempt time).
        attempts = _attempts(session, [webhook_id])
        row = session.scalar(
            select(Delivery).where(Delivery.id == webhook_id, Delivery.account_id == account_id)
        )
        if row is None:
            raise NotFound(f"no delivery {webhook_id!r}")
        body = canonical_body(row.payload).decode()
        return DeliveryDetail(_summary(row), body, [_attempt(a) for a in attempts])


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
