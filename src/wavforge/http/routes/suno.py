"""Routes of the Suno-style dialect. Each handler: parse, call the core, render."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request

from wavforge.core import accounts, delivery_log, tracks, wav_tasks
from wavforge.dialects import SUNO, suno
from wavforge.http import submissions
from wavforge.http.deps import ContextDep, PrincipalDep, SubmitterDep
from wavforge.http.idempotency import IdempotencyKey, once
from wavforge.http.openapi import AUTHENTICATED, LOOKUP, SUBMISSION, route

router = APIRouter(prefix="/api/v1", tags=["Suno dialect"])

TaskIdQuery = Query(..., alias="taskId", max_length=128, description="The task id.")


@router.post(
    "/wav/generate",
    summary="Convert a track to WAV",
    **route(SUNO, suno.WavSubmitted, SUBMISSION),
)
async def generate_wav(
    request: Request,
    body: suno.WavGenerateBody,
    ctx: ContextDep,
    who: SubmitterDep,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    async def submit() -> dict[str, Any]:
        record = await submissions.submit(ctx, who.account_id, body.to_request())
        return SUNO.success({"taskId": record.id})

    return await once(request, ctx, who.account_id, idempotency_key, submit)


@router.get(
    "/wav/record-info", summary="A WAV task's state", **route(SUNO, suno.WavRecordInfo, LOOKUP)
)
async def wav_record_info(
    ctx: ContextDep, who: PrincipalDep, task_id: str = TaskIdQuery
) -> dict[str, Any]:
    record = await ctx.db.run(wav_tasks.get_wav, ctx, who.account_id, task_id)
    return SUNO.success(suno.wav_record(record))


@router.get(
    "/generate/record-info",
    summary="A music task and its tracks",
    **route(SUNO, suno.MusicRecordInfo, LOOKUP),
)
async def music_record_info(
    ctx: ContextDep, who: PrincipalDep, task_id: str = TaskIdQuery
) -> dict[str, Any]:
    record = await ctx.db.run(tracks.get_music, ctx, who.account_id, task_id)
    return SUNO.success(suno.music_record(record))


@router.get(
    "/generate/credit",
    summary="The account's credit balance",
    **route(SUNO, int, AUTHENTICATED),
)
@router.get(
    "/chat/credit",
    summary="The account's credit balance, at kie.ai's path",
    **route(SUNO, int, AUTHENTICATED),
)
async def credit(ctx: ContextDep, who: PrincipalDep) -> dict[str, Any]:
    return SUNO.success(await ctx.db.run(accounts.balance, ctx.db, who.account_id))


@router.get(
    "/wav/callbacks",
    summary="A WAV task's callback deliveries and their attempts",
    **route(SUNO, suno.DeliveryLog, LOOKUP),
)
async def wav_callbacks(
    ctx: ContextDep, who: PrincipalDep, task_id: str = TaskIdQuery
) -> dict[str, Any]:
    records = await ctx.db.run_in_thread(delivery_log.for_task, ctx, who.account_id, task_id)
    return SUNO.success(suno.delivery_log(task_id, records))
