"""Operator endpoints (admin keys only).

The same operations as ``wavforge keys``, ``credits`` and ``maintenance`` on the command line,
for operators who manage a service they cannot log in to.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path, Query

from wavforge.core import account_detail, accounts, deletion, ledger, maintenance
from wavforge.dialects import SUNO, admin
from wavforge.errors import Conflict
from wavforge.http.deps import AdminDep, ContextDep
from wavforge.http.openapi import ADMIN, ADMIN_LOOKUP, route

router = APIRouter(prefix="/api/v1", tags=["Accounts and administration"])

# One object per parameter name: FastAPI binds a Path() to the first name it is used for.
KeyIdPath = Path(..., max_length=128, description="A key id (see the key list).")
AccountIdPath = Path(..., max_length=128, description="An account id.")
LimitQuery = Query(100, ge=1, le=1000, description="Newest entries to return.")


@router.post(
    "/admin/accounts",
    summary="Create an account and its first key",
    **route(SUNO, admin.NewKeyIssued, ADMIN),
)
async def create_account(body: admin.NewAccount, ctx: ContextDep, _: AdminDep) -> dict[str, Any]:
    issued = await ctx.db.run_in_thread(
        accounts.create_account,
        ctx.db,
        body.name,
        credits=body.credits,
        admin=body.admin,
        profile=body.profile,
    )
    return SUNO.success(admin.issued(issued))


@router.get(
    "/admin/accounts",
    summary="Every account, with its balance and working keys",
    **route(SUNO, list[admin.AccountRow], ADMIN),
)
async def list_accounts(ctx: ContextDep, _: AdminDep) -> dict[str, Any]:
    rows = await ctx.db.run_in_thread(accounts.list_accounts, ctx.db)
    return SUNO.success([admin.account(row) for row in rows])


@router.get(
    "/admin/accounts/{account_id}",
    summary="One account in detail: its keys and its usage, ever and over 30 days",
    **route(SUNO, admin.AccountInDetail, ADMIN_LOOKUP),
)
async def get_account(
    ctx: ContextDep, _: AdminDep, account_id: str = AccountIdPath
) -> dict[str, Any]:
    found = await ctx.db.run_in_thread(account_detail.detail, ctx.db, account_id)
    return SUNO.success(admin.account_detail(found))


@router.put(
    "/admin/accounts/{account_id}/admin",
    summary="Grant or remove admin rights (never from the last admin with a working key)",
    **route(SUNO, admin.AccountAdmin, (*ADMIN_LOOKUP, Conflict)),
)
async def set_admin(
    body: admin.AdminChoice, ctx: ContextDep, _: AdminDep, account_id: str = AccountIdPath
) -> dict[str, Any]:
    await ctx.db.run_in_thread(accounts.set_admin, ctx.db, account_id, body.admin)
    return SUNO.success({"accountId": account_id, "admin": body.admin})


@router.get(
    "/admin/keys",
    summary="Every key, by prefix (keys themselves are not stored)",
    **route(SUNO, list[admin.ListedKey], ADMIN),
)
async def list_keys(ctx: ContextDep, _: AdminDep) -> dict[str, Any]:
    rows = await ctx.db.run_in_thread(accounts.list_keys, ctx.db)
    return SUNO.success([admin.key_info(row) for row in rows])


@router.post(
    "/admin/keys/{key_id}/revoke",
    summary="Revoke a key at once",
    **route(SUNO, admin.KeyRevoked, ADMIN_LOOKUP),
)
async def revoke_key(ctx: ContextDep, _: AdminDep, key_id: str = KeyIdPath) -> dict[str, Any]:
    await ctx.db.run_in_thread(accounts.revoke_key, ctx.db, key_id)
    return SUNO.success({"keyId": key_id, "revoked": True})


@router.post(
    "/admin/keys/{key_id}/reset",
    summary="Revoke a key and issue its replacement",
    **route(SUNO, admin.NewKeyIssued, ADMIN_LOOKUP),
)
async def reset_key(ctx: ContextDep, _: AdminDep, key_id: str = KeyIdPath) -> dict[str, Any]:
    issued = await ctx.db.run_in_thread(accounts.reset_key, ctx.db, key_id)
    return SUNO.success(admin.issued(issued))


@router.post(
    "/admin/accounts/{account_id}/credits",
    summary="Grant (or take back) credits",
    **route(SUNO, admin.AccountBalance, ADMIN_LOOKUP),
)
async def grant_credits(
    body: admin.Grant, ctx: ContextDep, _: AdminDep, account_id: str = AccountIdPath
) -> dict[str, Any]:
    balance = await ctx.db.run_in_thread(ledger.grant, ctx.db, account_id, body.amount, body.note)
    return SUNO.success({"accountId": account_id, "balance": balance})


@router.put(
    "/admin/accounts/{account_id}/profile",
    summary="Choose the vendor profile of an account's keys",
    **route(SUNO, admin.AccountProfile, ADMIN_LOOKUP),
)
async def set_profile(
    body: admin.ProfileChoice, ctx: ContextDep, _: AdminDep, account_id: str = AccountIdPath
) -> dict[str, Any]:
    await ctx.db.run_in_thread(accounts.set_profile, ctx.db, account_id, body.profile)
    return SUNO.success({"accountId": account_id, "profile": body.profile})


@router.delete(
    "/admin/accounts/{account_id}/tracks",
    summary="Delete all of an account's tracks: sources and WAVs (records and ledger stay)",
    **route(SUNO, admin.AccountDataDeleted, (*ADMIN_LOOKUP, Conflict)),
)
async def delete_account_data(
    ctx: ContextDep, _: AdminDep, account_id: str = AccountIdPath
) -> dict[str, Any]:
    def run() -> deletion.Deleted:
        accounts.get_account(ctx.db, account_id)  # 404 for an unknown account
        return deletion.delete_account_data(ctx, account_id)

    deleted = await ctx.db.run_in_thread(run)
    return SUNO.success(admin.account_data_deleted(account_id, deleted))


@router.get(
    "/admin/accounts/{account_id}/ledger",
    summary="An account's ledger",
    **route(SUNO, admin.LedgerStatement, ADMIN_LOOKUP),
)
async def account_ledger(
    ctx: ContextDep, _: AdminDep, account_id: str = AccountIdPath, limit: int = LimitQuery
) -> dict[str, Any]:
    statement = await ctx.db.run_in_thread(ledger.statement, ctx.db, account_id, limit)
    return SUNO.success(admin.ledger(statement))


@router.get(
    "/admin/maintenance",
    summary="Whether maintenance mode is on",
    **route(SUNO, admin.MaintenanceState, ADMIN),
)
async def maintenance_state(ctx: ContextDep, _: AdminDep) -> dict[str, Any]:
    return SUNO.success({"enabled": await ctx.db.run_in_thread(maintenance.is_on, ctx.db)})


@router.put(
    "/admin/maintenance",
    summary="Switch maintenance mode (submissions answer 455)",
    **route(SUNO, admin.MaintenanceState, ADMIN),
)
async def switch_maintenance(
    body: admin.MaintenanceSwitch, ctx: ContextDep, _: AdminDep
) -> dict[str, Any]:
    await ctx.db.run_in_thread(ctx.maintenance.switch, body.enabled)
    return SUNO.success({"enabled": body.enabled})
