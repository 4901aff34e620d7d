"""Running a submission from a request, for both dialects and the console: one rule, here.

The transaction goes where all short database work goes (``Database.run``): on SQLite, the
event loop, where the writer holds both the file's lock and the GIL for the few hundred
microseconds it needs. The checks before it run in place, except a callback URL whose host
name must be looked up in DNS, which may take a while: that one goes to a thread.
"""

from __future__ import annotations

from wavforge.core import wav_tasks
from wavforge.core.context import Context
from wavforge.core.records import WavRecord
from wavforge.core.requests import WavRequest
from wavforge.offload import in_thread
from wavforge.outbound import needs_dns


async def submit(ctx: Context, account_id: str, request: WavRequest) -> WavRecord:
    if request.callback_url is not None and needs_dns(request.callback_url):
        output = await in_thread(wav_tasks.check, ctx, request)  # DNS, not the database
    else:
        output = wav_tasks.check(ctx, request)
    return await ctx.db.run(wav_tasks.accept, ctx, account_id, request, output)
