"""Routes of the unified dialect. Each handler: parse, call the core, render."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path, Query, Request

from wavforge.core import accounts, lookup
from wavforge.core.context import Context
from wavforge.core.records import WavRecord
from wavforge.dialects import UNIFIED, unified
from wavforge.http import submissions
from wavforge.http.deps import ContextDep, PrincipalDep, SubmitterDep
from wavforge.http.idempotency import IdempotencyKey, once
from wavforge.http.openapi import AUTHENTICATED, LOOKUP, SUBMISSION, route

generate = APIRouter(prefix="/api/generate")
user = APIRouter(prefix="/api/user")

TaskIdQuery = Query(..., alias="task_id", max_length=128, description="The task id.")
TaskIdPath = Path(..., max_length=128, description="The task id.")


@generate.post(
    "/submit",
    summary="Submit a convert-to-wav task",
    **route(UNIFIED, unified.TaskSubmitted, SUBMISSION),
)
async def submit(
    request: Request,
    body: unified.SubmitBody,
    ctx: ContextDep,
    who: SubmitterDep,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    async def run() -> dict[str, Any]:
        record = await submissions.submit(ctx, who.account_id, body.to_request())
        return UNIFIED.success(unified.submitted(record))

    return await once(request, ctx, who.account_id, idempotency_key, run)


TASK_ANSWER = route(UNIFIED, unified.WavTaskStatus | unified.MusicDetail, LOOKUP)


@generate.get("/status/{task_id}", summary="A task's status", **TASK_ANSWER)
async def status(ctx: ContextDep, who: PrincipalDep, task_id: str = TaskIdPath) -> dict[str, Any]:
    return await _task(ctx, who.account_id, task_id)


@generate.get(
    "/detail/music",
    summary="A task's details: a WAV conversion or imported tracks",
    **TASK_ANSWER,
)
async def detail(ctx: ContextDep, who: PrincipalDep, task_id: str = TaskIdQuery) -> dict[str, Any]:
    return await _task(ctx, who.account_id, task_id)


async def _task(ctx: Context, account_id: str, task_id: str) -> dict[str, Any]:
    """Both endpoints answer alike: the vendor's clients poll either one."""
    record = await ctx.db.run(lookup.any_task, ctx, account_id, task_id)
    if isinstance(record, WavRecord):
        return UNIFIED.success(unified.wav_status(record))
    return UNIFIED.success(unified.music_detail(record))


@user.get(
    "/balance",
    summary="The account's credit balance",
    **route(UNIFIED, unified.Balance, AUTHENTICATED),
)
async def balance(ctx: ContextDep, who: PrincipalDep) -> dict[str, Any]:
    credits = await ctx.db.run(accounts.balance, ctx.db, who.account_id)
    return UNIFIED.success(unified.balance(who.account_id, credits))


router = APIRouter(tags=["Unified dialect"])
router.include_router(generate)
router.include_router(user)
