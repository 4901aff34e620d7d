"""Routes of the unified dialect. Each handler: parse, call the core, render."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path, Query, Request

from wavforge.core import lookup
from wavforge.core.records import WavRecord
from wavforge.dialects import unified
from wavforge.http import submissions
from wavforge.http.deps import ContextDep, PrincipalDep, SubmitterDep, db_call
from wavforge.http.idempotency import IdempotencyKey, once
from wavforge.http.openapi import LOOKUP, SUBMISSION, UNIFIED

PREFIX = "/api/generate"
router = APIRouter(prefix=PREFIX, tags=["Unified dialect"])

TaskIdQuery = Query(..., alias="task_id", max_length=128, description="The task id.")
TaskIdPath = Path(..., max_length=128, description="The task id.")


@router.post(
    "/submit",
    summary="Submit a convert-to-wav task",
    **UNIFIED.route(unified.TaskSubmitted, SUBMISSION),
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
        return unified.success(unified.submitted(record))

    return await once(request, ctx, who.account_id, idempotency_key, run)


@router.get(
    "/status/{task_id}",
    summary="A task's status",
    **UNIFIED.route(unified.WavTaskStatus | unified.MusicDetail, LOOKUP),
)
async def status(ctx: ContextDep, who: PrincipalDep, task_id: str = TaskIdPath) -> dict[str, Any]:
    record = await db_call(ctx, lookup.any_task, ctx, who.account_id, task_id)
    if isinstance(record, WavRecord):
        return unified.success(unified.wav_status(record))
    return unified.success(unified.music_detail(record))


@router.get(
    "/detail/music",
    summary="A task's details: a WAV conversion or imported tracks",
    **UNIFIED.route(unified.WavTaskDetail | unified.MusicDetail, LOOKUP),
)
async def detail(ctx: ContextDep, who: PrincipalDep, task_id: str = TaskIdQuery) -> dict[str, Any]:
    record = await db_call(ctx, lookup.any_task, ctx, who.account_id, task_id)
    if isinstance(record, WavRecord):
        return unified.success(unified.wav_detail(record))
    return unified.success(unified.music_detail(record))
