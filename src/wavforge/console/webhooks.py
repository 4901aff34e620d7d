"""The webhook portal on the "Keys and webhooks" page: the account's deliveries in pages
with filters, one delivery in full, Resend, and Send test event.

Each fragment calls the same core functions as ``/api/v1/account/deliveries`` and
``/api/v1/account/webhooks/test``; the console adds only the markup.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import HTMLResponse

from wavforge.console.routes import FRAGMENT_HEADERS, PORTAL_PAGE, templates
from wavforge.core import delivery_log, webhook_events
from wavforge.core.context import Context
from wavforge.core.states import DeliveryStatus
from wavforge.http.deps import ContextDep, PrincipalDep
from wavforge.offload import in_thread

router = APIRouter(prefix="/console/partials/webhooks", include_in_schema=False)

WebhookIdPath = Path(..., max_length=128)


def _render(request: Request, name: str, **context: Any) -> HTMLResponse:
    response = templates.TemplateResponse(request, f"partials/{name}.html", context)
    response.headers.update(FRAGMENT_HEADERS)
    return response


FILTERS = ("q", "state", "since", "until")


def _portal(ctx: Context, account_id: str, raw: Mapping[str, str], **extra: Any) -> dict[str, Any]:
    """A page of the portal's deliveries for the filters as the form sent them (the same
    rules as the API's), and those filters, for the links to the pages around it."""
    query = delivery_log.parse(limit=PORTAL_PAGE, **raw)
    found = delivery_log.page(ctx, account_id, query)
    filters = {name: raw[name] for name in FILTERS if raw.get(name)}
    return {"found": found, "filters": filters, **extra}


def _raw(request: Request) -> dict[str, str]:
    return {
        name: request.query_params[name][:400]
        for name in (*FILTERS, "cursor")
        if request.query_params.get(name)
    }


@router.get("", response_class=HTMLResponse)
async def portal(request: Request, ctx: ContextDep, who: PrincipalDep) -> HTMLResponse:
    found = await ctx.db.run_in_thread(_portal, ctx, who.account_id, _raw(request))
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
    found = await ctx.db.run_in_thread(_portal, ctx, who.account_id, {}, opened=sent)
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
