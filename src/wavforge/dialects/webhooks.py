"""The webhook portal's shapes (wavforge extension, the Suno envelope): the account's
delivery log in pages, one delivery in full, test events and resends."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from wavforge.core.delivery_log import AttemptRecord, DeliveryDetail, DeliveryPage, DeliverySummary
from wavforge.core.states import DeliveryStatus
from wavforge.dialects.suno import Time, time
from wavforge.dialects.wire import Shape, one_of

KINDS = ("task", "test")


class TestEventRequest(BaseModel):
    """Where to send a signed test event; checked as a request's callback URL is."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(description="An http(s) URL, at most 2048 characters, public addresses.")


class ListedDelivery(Shape):
    webhookId: str
    kind: str = one_of(KINDS)
    taskId: str | None
    url: str
    status: str = one_of(status.value for status in DeliveryStatus)
    tries: int
    nextAttemptTime: Time | None
    createTime: Time
    deliveredTime: Time | None


class DeliveryCounts(Shape):
    PENDING: int
    DELIVERED: int
    FAILED: int


class DeliveryList(Shape):
    deliveries: list[ListedDelivery]
    total: int = Field(ge=0, description="Deliveries matching every filter, on all pages.")
    nextCursor: str | None = Field(description="``cursor`` of the next page; null on the last.")
    prevCursor: str | None = Field(description="``cursor`` of the page before; null on the first.")
    counts: DeliveryCounts


class DeliveryTry(Shape):
    time: Time
    durationMs: int
    statusCode: int | None
    error: str | None
    requestHeaders: list[list[str]]
    responseHeaders: list[list[str]]
    responseBody: str | None


class DeliveryInFull(ListedDelivery):
    body: str
    attempts: list[DeliveryTry]


class Queued(Shape):
    webhookId: str
    status: str


def listed(row: DeliverySummary) -> dict[str, Any]:
    return {
        "webhookId": row.id,
        "kind": row.kind,
        "taskId": row.task_id,
        "url": row.url,
        "status": row.status,
        "tries": row.tries,
        "nextAttemptTime": time(row.next_attempt_at),
        "createTime": time(row.created_at),
        "deliveredTime": time(row.delivered_at),
    }


def delivery_page(found: DeliveryPage) -> dict[str, Any]:
    return {
        "deliveries": [listed(row) for row in found.deliveries],
        "total": found.total,
        "nextCursor": found.next_cursor,
        "prevCursor": found.prev_cursor,
        "counts": found.counts,
    }


def delivery_detail(found: DeliveryDetail) -> dict[str, Any]:
    return listed(found.delivery) | {
        "body": found.body,
        "attempts": [_try(attempt) for attempt in found.attempts],
    }


def queued(webhook_id: str) -> dict[str, Any]:
    return {"webhookId": webhook_id, "status": DeliveryStatus.PENDING.value}


def _try(attempt: AttemptRecord) -> dict[str, Any]:
    return {
        "time": time(attempt.started_at),
        "durationMs": attempt.duration_ms,
        "statusCode": attempt.status_code,
        "error": attempt.error,
        "requestHeaders": attempt.request_headers or [],
        "responseHeaders": attempt.response_headers or [],
        "responseBody": attempt.response_body,
    }
