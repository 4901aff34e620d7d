"""The webhook portal (wavforge extension): an account's deliveries in pages, one delivery
in full, sending one again, and signed test events. The console calls the same core."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path, Query

from wavforge.core import delivery_log, listing, webhook_events
from wavforge.dialects import SUNO, webhooks
from wavforge.errors import Conflict
from wavforge.http.deps import ContextDep, PrincipalDep
from wavforge.http.openapi import AUTHENTICATED, LOOKUP, route
from wavforge.offload import in_thread

router = APIRouter(prefix="/api/v1/account", tags=["Your account"])

WebhookIdPath = Path(..., max_length=128, description="A delivery's id (its webhook-id).")
PageLimit = Query(20, ge=1, le=delivery_log.MAX_PAGE, description="Deliveries per page.")
CursorQuery = Query(
    None, max_length=listing.MAX_CURSOR, description="A page's nextCursor or prevCursor."
)
StateQuery = Query(None, max_length=20, description="delivered, failed or pending.")
TaskQuery = Query(None, alias="taskId", max_length=128, description="Only this task's.")
SearchQuery = Query(
    None, max_length=listing.MAX_SEARCH, description="The start of a webhook id or a task id."
)
SinceQuery = Query(None, max_length=40, description="Created at or after (ISO 8601 date/time).")
UntilQuery = Query(None, max_length=40, description="Created before; a date covers its day.")


@router.get(
    "/deliveries",
    summary="The account's webhook deliveries, newest first, in pages",
    **route(SUNO, webhooks.DeliveryList, LOOKUP),
)
async def list_deliveries(
    ctx: ContextDep,
    who: PrincipalDep,
    limit: int = PageLimit,
    cursor: str | None = CursorQuery,
    state: str | None = StateQuery,
    task_id: str | None = TaskQuery,
    q: str | None = SearchQuery,
    since: str | None = SinceQuery,
    until: str | None = UntilQuery,
) -> dict[str, Any]:
    query = delivery_log.parse(
        limit=limit, cursor=cursor, q=q, state=state, since=since, until=until
    )
    found = await ctx.db.run_in_thread(delivery_log.page, ctx, who.account_id, query, task_id)
    return SUNO.success(webhooks.delivery_page(found))


@router.get(
    "/deliveries/{webhook_id}",
    summary="One delivery in full: the body, and every try's headers and answer",
    **route(SUNO, webhooks.DeliveryInFull, LOOKUP),
)
async def show_delivery(
    ctx: ContextDep, who: PrincipalDep, webhook_id: str = WebhookIdPath
) -> dict[str, Any]:
    found = await ctx.db.run_in_thread(delivery_log.detail, ctx, who.account_id, webhook_id)
    return SUNO.success(webhooks.delivery_detail(found))


@router.post(
    "/deliveries/{webhook_id}/resend",
    summary="Send a delivery again now: same webhook-id, new timestamp and signature",
    **route(SUNO, webhooks.Queued, (*LOOKUP, Conflict)),
)
async def resend_delivery(
    ctx: ContextDep, who: PrincipalDep, webhook_id: str = WebhookIdPath
) -> dict[str, Any]:
    await ctx.db.run_in_thread(webhook_events.resend, ctx, who.account_id, webhook_id)
    return SUNO.success(webhooks.queued(webhook_id))


@router.post(
    "/webhooks/test",
    summary="Send a signed test event to a URL through the outbox",
    **route(SUNO, webhooks.Queued, AUTHENTICATED),
)
async def send_test_event(
    body: webhooks.TestEventRequest, ctx: ContextDep, who: PrincipalDep
) -> dict[str, Any]:
    # The URL check may ask DNS: the whole call goes to a thread.
    sent = await in_thread(webhook_events.send_test, ctx, who.account_id, body.url)
    return SUNO.success(webhooks.queued(sent))
