"""Request dependencies: the process's core context and the caller's identity."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, ParamSpec, TypeVar

from fastapi import Depends, Request

from wavforge import profiles
from wavforge.core import accounts
from wavforge.core.accounts import Principal
from wavforge.core.context import Context
from wavforge.errors import Forbidden, Unauthorized
from wavforge.offload import in_thread
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


async def nearby(remote: bool, work: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``work`` in the event loop, or in a thread when it is ``remote``: a network round
    trip away (a database server, Redis), which must not hold up the event loop."""
    if remote:
        return await in_thread(work, *args, **kwargs)
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
    principal = await context.db.run(accounts.authenticate, context.db, key.strip())
    request.state.key_id = principal.key_id  # for the access log line
    note_profile(request, principal.profile)  # before the rate limit: its 430 is numbered too
    if accounts.use_is_unrecorded(principal):  # about once a minute per key: a write
        # Skipped while another writer holds SQLite: the next request notes it.
        await context.db.run_or_skip(accounts.record_use, context.db, principal)
    await nearby(context.limiter.counts_remotely, context.limiter.hit, principal.key_id)
    return principal


async def get_admin(who: Annotated[Principal, Depends(get_principal)]) -> Principal:
    if not who.is_admin:
        raise Forbidden("this endpoint needs an admin key")
    return who


async def get_submitter(
    request: Request, who: Annotated[Principal, Depends(get_principal)]
) -> Principal:
    """The caller of a submission, which answers 455 in maintenance mode (reads never do)."""
    context = context_of(request)
    await context.db.run(context.maintenance.check)  # cached: a query about once a second
    return who


ContextDep = Annotated[Context, Depends(get_context)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
AdminDep = Annotated[Principal, Depends(get_admin)]
SubmitterDep = Annotated[Principal, Depends(get_submitter)]
