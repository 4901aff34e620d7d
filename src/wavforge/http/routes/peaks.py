"""A WAV's waveform peaks, for players that draw a track without downloading it:
``GET /api/v1/account/wav-tasks/{taskId}/peaks`` (wavforge extension).

The same ownership as the WAV's record: another account's task, a task whose WAV is not made
yet or is gone, and a WAV made before peaks were kept all answer 404.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path

from wavforge.core import peaks
from wavforge.dialects import SUNO, admin
from wavforge.http.deps import ContextDep, PrincipalDep
from wavforge.http.openapi import LOOKUP, route

router = APIRouter(prefix="/api/v1/account", tags=["Your account"])

TaskIdPath = Path(..., max_length=128, description="A WAV task's id (taskId).")


@router.get(
    "/wav-tasks/{task_id}/peaks",
    summary="A WAV's waveform peaks (audiowaveform JSON, version 2, 8 bits)",
    **route(SUNO, admin.WaveformPeaks, LOOKUP),
)
async def wav_peaks(
    ctx: ContextDep, who: PrincipalDep, task_id: str = TaskIdPath
) -> dict[str, Any]:
    document = await ctx.db.run_in_thread(peaks.read, ctx, who.account_id, task_id)
    return SUNO.success(document)
