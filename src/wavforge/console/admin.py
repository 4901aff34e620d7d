"""The console's Administration page and its drill-down into one account (admin keys only).

Each action calls the core function its ``/api/v1/admin/...`` endpoint calls, and answers the
fragment it was made from, re-rendered. A refusal the operator must act on — removing the
last admin's rights — is shown in the drill-down itself, where it stays until the next action,
rather than as a toast that fades.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import HTMLResponse

from wavforge.console.lists import ledger_page, raw_filters
from wavforge.console.routes import _fragment
from wavforge.core import account_detail, accounts, ledger, maintenance
from wavforge.core.context import Context
from wavforge.core.ledger import MAX_GRANT
from wavforge.errors import Conflict
from wavforge.http.deps import AdminDep, ContextDep

router = APIRouter(prefix="/console/partials/admin", include_in_schema=False)

AccountIdPath = Path(..., max_length=128)
KeyIdPath = Path(..., max_length=128)
# Where a grant was made from, so that the same view comes back.
GrantedFrom = Literal["accounts", "account"]


# --- the Administration page ------------------------------------------------------------------


@router.get("", response_class=HTMLResponse)
async def admin(request: Request, ctx: ContextDep, _: AdminDep) -> HTMLResponse:
    return _fragment(request, "admin", **await ctx.db.run_in_thread(_admin, ctx))


def _admin(ctx: Context, **extra: Any) -> dict[str, Any]:
    return {
        "accounts": accounts.list_accounts(ctx.db),
        "maintenance": maintenance.is_on(ctx.db),
        "max_grant": MAX_GRANT,
        **extra,
    }


@router.post("/accounts", response_class=HTMLResponse)
async def create_account(
    request: Request,
    ctx: ContextDep,
    _: AdminDep,
    name: Annotated[str, Form(min_length=1, max_length=200)],
    credits: Annotated[int, Form(ge=0, le=MAX_GRANT)] = 0,
    profile: Annotated[str, Form(max_length=20)] = "",
    admin: Annotated[bool, Form()] = False,
) -> HTMLResponse:
    def run() -> dict[str, Any]:
        issued = accounts.create_account(
            ctx.db, name.strip(), credits=credits, admin=admin, profile=profile or None
        )
        return _admin(ctx, issued=issued, issued_name=name.strip())

    return _fragment(request, "admin", **await ctx.db.run_in_thread(run))


@router.post("/accounts/{account_id}/credits", response_class=HTMLResponse)
async def grant(
    request: Request,
    ctx: ContextDep,
    who: AdminDep,
    amount: Annotated[int, Form(ge=-MAX_GRANT, le=MAX_GRANT)],
    note: Annotated[str, Form(max_length=200)] = "",
    then: Annotated[GrantedFrom, Form()] = "accounts",
    account_id: str = AccountIdPath,
) -> HTMLResponse:
    """One grant form on both views; ``then`` says which one to show again."""

    def run() -> dict[str, Any]:
        ledger.grant(ctx.db, account_id, amount, note.strip() or "granted in the console")
        if then == "account":
            return _account(ctx, account_id, me=who.account_id, granted=True)
        return _admin(ctx, granted=account_id)

    found = await ctx.db.run_in_thread(run)
    return _fragment(request, "admin_account" if then == "account" else "admin", **found)


@router.post("/maintenance", response_class=HTMLResponse)
async def switch_maintenance(
    request: Request,
    ctx: ContextDep,
    _: AdminDep,
    enabled: Annotated[bool, Form()],
) -> HTMLResponse:
    def run() -> dict[str, Any]:
        ctx.maintenance.switch(enabled)
        return _admin(ctx)

    return _fragment(request, "admin", **await ctx.db.run_in_thread(run))


# --- one account ------------------------------------------------------------------------------


def _account(ctx: Context, account_id: str, **extra: Any) -> dict[str, Any]:
    """What the drill-down shows; its ledger is a list of its own, loaded by the page."""
    return {
        "found": account_detail.detail(ctx.db, account_id),
        "recent_days": account_detail.RECENT_DAYS,
        "max_grant": MAX_GRANT,
        **extra,
    }


@router.get("/accounts/{account_id}", response_class=HTMLResponse)
async def account(
    request: Request, ctx: ContextDep, who: AdminDep, account_id: str = AccountIdPath
) -> HTMLResponse:
    found = await ctx.db.run_in_thread(_account, ctx, account_id, me=who.account_id)
    return _fragment(request, "admin_account", **found)


@router.post("/accounts/{account_id}/admin", response_class=HTMLResponse)
async def set_admin(
    request: Request,
    ctx: ContextDep,
    who: AdminDep,
    admin: Annotated[bool, Form()],
    account_id: str = AccountIdPath,
) -> HTMLResponse:
    """Grant or remove admin rights; the last admin's refusal shows in the page."""

    def run() -> dict[str, Any]:
        try:
            accounts.set_admin(ctx.db, account_id, admin)
        except Conflict as refused:
            return _account(ctx, account_id, me=who.account_id, refused=refused.message)
        return _account(ctx, account_id, me=who.account_id, switched=True)

    return _fragment(request, "admin_account", **await ctx.db.run_in_thread(run))


@router.post("/accounts/{account_id}/keys/{key_id}/revoke", response_class=HTMLResponse)
async def revoke_key(
    request: Request,
    ctx: ContextDep,
    who: AdminDep,
    account_id: str = AccountIdPath,
    key_id: str = KeyIdPath,
) -> HTMLResponse:
    def run() -> dict[str, Any]:
        accounts.revoke_key(ctx.db, key_id, account_id)
        return _account(ctx, account_id, me=who.account_id, just_revoked=key_id)

    return _fragment(request, "admin_account", **await ctx.db.run_in_thread(run))


@router.post("/accounts/{account_id}/keys/{key_id}/reset", response_class=HTMLResponse)
async def reset_key(
    request: Request,
    ctx: ContextDep,
    who: AdminDep,
    account_id: str = AccountIdPath,
    key_id: str = KeyIdPath,
) -> HTMLResponse:
    def run() -> dict[str, Any]:
        issued = accounts.reset_key(ctx.db, key_id, account_id)
        return _account(ctx, account_id, me=who.account_id, issued=issued)

    return _fragment(request, "admin_account", **await ctx.db.run_in_thread(run))


@router.get("/accounts/{account_id}/ledger", response_class=HTMLResponse)
async def account_ledger(
    request: Request, ctx: ContextDep, _: AdminDep, account_id: str = AccountIdPath
) -> HTMLResponse:
    """The account's credit history, paged as the account's own (ledger_list.html)."""
    raw = raw_filters(request.query_params)

    def read() -> dict[str, Any]:
        accounts.get_account(ctx.db, account_id)  # 404 for an unknown account
        return ledger_page(ctx, account_id, raw)

    found = await ctx.db.run_in_thread(read)
    ledger_url = f"/console/partials/admin/accounts/{account_id}/ledger"
    return _fragment(request, "ledger_list", **found, ledger_url=ledger_url, link_tasks=False)
