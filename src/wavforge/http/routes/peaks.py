"""Waveform peaks, for players that draw a track without downloading it (wavforge extension):
a WAV's at ``GET /api/v1/account/wav-tasks/{taskId}/peaks``, an imported source's at
``GET /api/v1/account/tracks/{audioId}/peaks``.

The same ownership as the audio's record: another account's task or track answers 404, and
so does audio without peaks — a WAV not made yet or gone, or made before peaks were kept; a
source whose peaks are not measured yet (they follow its import by a moment), could not be
measured, or was imported before sources were measured.
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
AudioIdPath = Path(..., max_length=128, description="A track's id (audioId).")


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


@router.get(
    "/tracks/{audio_id}/peaks",
    summary="An imported source's waveform peaks (audiowaveform JSON, version 2, 8 bits)",
    **route(SUNO, admin.WaveformPeaks, LOOKUP),
)
async def source_peaks(
    ctx: ContextDep, who: PrincipalDep, audio_id: str = AudioIdPath
) -> dict[str, Any]:
    document = await ctx.db.run_in_thread(peaks.read_source, ctx, who.account_id, audio_id)
    return SUNO.success(document)
