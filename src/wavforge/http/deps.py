"""Request dependencies: the process's core context and the caller's identity."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Annotated, ParamSpec, TypeVar

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool

from wavforge import profiles
from wavforge.core import accounts
from wavforge.core.accounts import Principal
from wavforge.core.context import Context
from wavforge.db.database import WouldWait, in_place
from wavforge.errors import Forbidden, Unauthorized
from wavforge.profiles import Profile

P = ParamSpec("P")
T = TypeVar("T")


def context_of(request: Request) -> Context:
    context: Context = request.app.state.context
    return context


async def get_context(request: Request) -> Context:
    """The dependency: ``async`` because FastAPI runs a plain ``def`` dependency in the
    threadpool, a thread hop on every request for an attribute read."""
    return context_of(request)


async def db_call(ctx: Context, work: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Short database work of a request (the key, a task's state, a submission's
    transaction): in the event loop on SQLite, in a thread on a database server.

    On SQLite such work is a call into this process: a read takes tens of microseconds and
    waits for no lock (WAL), a write a few hundred and queues behind at most one other
    writer (``WriterQueue``). A trip to the threadpool costs more CPU than a read on a small
    machine under load (about 0.3 ms per request here) and makes the threads fight over the
    GIL; and a writer thread holds the file's lock while it waits for the GIL.

    In the event loop nothing may wait for a lock: a write that finds the database locked
    gives up before it has done anything (``db.in_place``) and runs again in a thread.
    """
    if not ctx.db.is_sqlite:
        return await run_in_threadpool(work, *args, **kwargs)
    try:
        with in_place():
            return work(*args, **kwargs)
    except WouldWait:
        # Another writer holds the file (another process, a backup): wait in a thread, so
        # that only this request waits, not every request of the process.
        return await run_in_threadpool(work, *args, **kwargs)


async def nearby(remote: bool, work: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``work`` in the event loop, or in a thread when it is ``remote``: a network round
    trip away (a database server, Redis), which must not hold up the event loop."""
    if remote:
        return await run_in_threadpool(work, *args, **kwargs)
    return work(*args, **kwargs)


def note_profile(request: Request, name: str | None) -> None:
    """Remember the caller's vendor profile for every answer to this request."""
    request.state.profile = profiles.named(name, server_profile(request))


def server_profile(request: Request) -> Profile:
    """The operator's default (``WAVFORGE_PROFILE``), for callers without one of their own."""
    return profiles.named(request.app.state.context.settings.profile)


async def get_principal(request: Request) -> Principal:
    """The caller, authenticated and counted against its key's request rate (430 beyond)."""
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise Unauthorized()
    context = context_of(request)
    principal = await db_call(context, accounts.authenticate, context.db, key.strip())
    request.state.key_id = principal.key_id  # for the access log line
    note_profile(request, principal.profile)  # before the rate limit: its 430 is numbered too
    if accounts.use_is_unrecorded(principal):  # about once a minute per key: a write
        await _note_use(context, principal)
    await nearby(context.limiter.counts_remotely, context.limiter.hit, principal.key_id)
    return principal


async def _note_use(context: Context, principal: Principal) -> None:
    """Note the key's use, unless the database is locked for longer than a moment: then the
    next request notes it. Bookkeeping never makes a read wait for a writer."""
    if not context.db.is_sqlite:
        await run_in_threadpool(accounts.record_use, context.db, principal)
        return
    with contextlib.suppress(WouldWait), in_place():
        accounts.record_use(context.db, principal)


async def get_admin(who: Annotated[Principal, Depends(get_principal)]) -> Principal:
    if not who.is_admin:
        raise Forbidden("this endpoint needs an admin key")
    return who


async def get_submitter(
    request: Request, who: Annotated[Principal, Depends(get_principal)]
) -> Principal:
    """The caller of a submission, which answers 455 in maintenance mode (reads never do)."""
    context = context_of(request)
    await db_call(context, context.maintenance.check)  # cached: a query about once a second
    return who


ContextDep = Annotated[Context, Depends(get_context)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
AdminDep = Annotated[Principal, Depends(get_admin)]
SubmitterDep = Annotated[Principal, Depends(get_submitter)]
