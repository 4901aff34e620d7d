"""Running a submission at most once per ``Idempotency-Key``; the rule is in the core."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Header, Request
from fastapi.responses import JSONResponse

from wavforge.core import idempotency
from wavforge.core.context import Context
from wavforge.errors import InvalidRequest, WavforgeError
from wavforge.http.errors import render_for

REPLAYED = "Idempotent-Replayed"

# Declared on the submission routes so the OpenAPI schema shows it; the rules are the core's.
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Send the same key again to get the first answer back instead of a new task.",
    ),
]

Submission = Callable[[], Awaitable[dict[str, Any]]]


async def once(
    request: Request, ctx: Context, account_id: str, key: str | None, submission: Submission
) -> dict[str, Any] | JSONResponse:
    """Run ``submission``, or answer as the first request with the same key was answered.

    Domain errors (400, 404, 409, 429, ...) are answers too and are stored; a server error
    releases the key, since the client may fairly retry it.
    """
    if key is None:
        return await submission()
    fingerprint = await _fingerprint(request)
    stored = await ctx.db.run_in_thread(idempotency.begin, ctx.db, account_id, key, fingerprint)
    if stored is not None:
        return JSONResponse(stored.body, stored.status_code, headers={REPLAYED: "true"})
    try:
        body = await submission()
    except WavforgeError as error:
        if error.code >= 500:
            await ctx.db.run_in_thread(idempotency.abandon, ctx.db, account_id, key)
            raise
        rendered, status = await render_for(request, error)
        await ctx.db.run_in_thread(idempotency.finish, ctx.db, account_id, key, status, rendered)
        return JSONResponse(rendered, status, headers=error.headers or None)
    except BaseException:
        await ctx.db.run_in_thread(idempotency.abandon, ctx.db, account_id, key)
        raise
    await ctx.db.run_in_thread(idempotency.finish, ctx.db, account_id, key, 200, body)
    return body


async def _fingerprint(request: Request) -> str:
    """The request's path and JSON body, with key order and spacing made irrelevant."""
    if not request.headers.get("content-type", "").startswith("application/json"):
        raise InvalidRequest("Idempotency-Key is accepted on JSON requests only")
    raw = await request.body()
    try:
        canonical = json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":"))
    except (ValueError, RecursionError):  # nested deeper than json can walk: the bytes then
        canonical = raw.decode("utf-8", "replace")
    return hashlib.sha256(f"{request.method} {request.url.path}\n{canonical}".encode()).hexdigest()
