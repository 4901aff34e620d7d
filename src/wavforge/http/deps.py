"""Request dependencies: the process's core context and the caller's identity."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool

from wavforge.core import accounts
from wavforge.core.accounts import Principal
from wavforge.core.context import Context
from wavforge.errors import Forbidden, Unauthorized


def get_context(request: Request) -> Context:
    context: Context = request.app.state.context
    return context


async def get_principal(request: Request) -> Principal:
    """The caller, authenticated and counted against its key's request rate (430 beyond)."""
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise Unauthorized()
    context = get_context(request)
    principal = await run_in_threadpool(accounts.authenticate, context.db, key.strip())
    context.limiter.hit(principal.key_id)
    return principal


async def get_admin(who: Annotated[Principal, Depends(get_principal)]) -> Principal:
    if not who.is_admin:
        raise Forbidden("this endpoint needs an admin key")
    return who


async def get_submitter(
    request: Request, who: Annotated[Principal, Depends(get_principal)]
) -> Principal:
    """The caller of a submission, which answers 455 in maintenance mode (reads never do)."""
    await run_in_threadpool(get_context(request).maintenance.check)
    return who


ContextDep = Annotated[Context, Depends(get_context)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
AdminDep = Annotated[Principal, Depends(get_admin)]
SubmitterDep = Annotated[Principal, Depends(get_submitter)]
