"""Finding a task by id when the caller does not say which kind it is.

The unified dialect reads WAV tasks and imported music tasks through the same endpoints, so
an id is looked up as a WAV task first, then as a music task, always within the account.
"""

from __future__ import annotations

from wavforge.core import tracks, wav_tasks
from wavforge.core.context import Context
from wavforge.core.records import MusicRecord, WavRecord
from wavforge.errors import NotFound


def any_task(ctx: Context, account_id: str, task_id: str) -> WavRecord | MusicRecord:
    """The account's WAV task or music task with this id; 404 when it has neither."""
    try:
        return wav_tasks.get_wav(ctx, account_id, task_id)
    except NotFound:
        pass
    try:
        return tracks.get_music(ctx, account_id, task_id)
    except NotFound:
        raise NotFound(f"no task {task_id!r}") from None
