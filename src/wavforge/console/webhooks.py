"""The webhook portal on the "Keys and webhooks" page: the account's deliveries in pages
with filters, one delivery in full, Resend, and Send test event.

Each fragment calls the same core functions as ``/api/v1/account/deliveries`` and
``/api/v1/account/webhooks/test``; the console adds only the markup.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse

from wavforge.console.routes import FRAGMENT_HEADERS, templates
from wavforge.core import delivery_log, webhook_events
from wavforge.core.context import Context
from wavforge.core.states import DeliveryStatus
from wavforge.http.deps import ContextDep, PrincipalDep
from wavforge.offload import in_thread

router = APIRouter(prefix="/console/partials/webhooks", include_in_schema=False)

WebhookIdPath = Path(..., max_length=128)
PAGE = 20


def _render(request: Request, name: str, **context: Any) -> HTMLResponse:
    response = templates.TemplateResponse(request, f"partials/{name}.html", context)
    response.headers.update(FRAGMENT_HEADERS)
    return response


def _portal(
    ctx: Context, account_id: str, state: str, task: str, cursor: str, **extra: Any
) -> dict[str, Any]:
    found = delivery_log.page(
        ctx,
        account_id,
        limit=PAGE,
        cursor=cursor or None,
        state=delivery_log.parse_state(state),
        task_id=task.strip() or None,
    )
    return {"found": found, "state": state.lower(), "task": task.strip(), **extra}


@router.get("", response_class=HTMLResponse)
async def portal(
    request: Request,
    ctx: ContextDep,
    who: PrincipalDep,
    state: Annotated[str, Query(max_length=20)] = "",
    task: Annotated[str, Query(max_length=128)] = "",
    cursor: Annotated[str, Query(max_length=300)] = "",
) -> HTMLResponse:
    found = await ctx.db.run_in_thread(_portal, ctx, who.account_id, state, task, cursor)
    return _render(request, "webhooks", **found)


@router.post("/test", response_class=HTMLResponse)
async def send_test(
    request: Request,
    ctx: ContextDep,
    who: PrincipalDep,
    url: Annotated[str, Form(max_length=4096)],
) -> HTMLResponse:
    """Queue a test event (the URL checked as the API checks it) and open it."""
    sent = await in_thread(webhook_events.send_test, ctx, who.account_id, url.strip())
    found = await ctx.db.run_in_thread(_portal, ctx, who.account_id, "", "", "", opened=sent)
    return _render(request, "webhooks", **found)


@router.get("/{webhook_id}", response_class=HTMLResponse)
async def delivery(
    request: Request, ctx: ContextDep, who: PrincipalDep, webhook_id: str = WebhookIdPath
) -> HTMLResponse:
    found = await ctx.db.run_in_thread(delivery_log.detail, ctx, who.account_id, webhook_id)
    return _render(request, "webhook", found=found, due=_due_now(found))


@router.post("/{webhook_id}/resend", response_class=HTMLResponse)
async def resend(
    request: Request, ctx: ContextDep, who: PrincipalDep, webhook_id: str = WebhookIdPath
) -> HTMLResponse:
    def run() -> delivery_log.DeliveryDetail:
        webhook_events.resend(ctx, who.account_id, webhook_id)
        return delivery_log.detail(ctx, who.account_id, webhook_id)

    found = await ctx.db.run_in_thread(run)
    return _render(request, "webhook", found=found, due=_due_now(found), resent=True)


def _due_now(found: delivery_log.DeliveryDetail) -> bool:
    """A try is due or on its way: the fragment polls until it is recorded."""
    shown = found.delivery
    return shown.status == DeliveryStatus.PENDING and shown.next_attempt_at is None
