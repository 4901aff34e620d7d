"""Running a submission from a request, for both dialects and the console: one rule, here.

On SQLite the transaction runs in the event loop. SQLite takes one writer at a time, and a
writer in a thread holds the file's lock while it waits its turn for the GIL behind the
event loop's requests (up to the 5-ms switch interval each time it wants it back): under a
burst of submissions the lock was mostly held by threads waiting for the GIL. In the event
loop the writer holds both, and the transaction is a few hundred microseconds. What may
block for long stays in a thread: the callback URL's DNS lookup, and on a database server
the whole transaction, which is network round trips away.
"""

from __future__ import annotations

from fastapi.concurrency import run_in_threadpool

from wavforge.core import wav_tasks
from wavforge.core.context import Context
from wavforge.core.records import WavRecord
from wavforge.core.wav_tasks import WavRequest
from wavforge.outbound.urls import needs_dns


async def submit(ctx: Context, account_id: str, request: WavRequest) -> WavRecord:
    if not ctx.db.is_sqlite:
        return await run_in_threadpool(wav_tasks.submit, ctx, account_id, request)
    if request.callback_url is not None and needs_dns(request.callback_url):
        output = await run_in_threadpool(wav_tasks.check, ctx, request)
    else:
        output = wav_tasks.check(ctx, request)
    return wav_tasks.accept(ctx, account_id, request, output)
