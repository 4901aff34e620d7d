"""Request dependencies: the process's core context and the caller's identity."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool

from wavforge.core import accounts
from wavforge.core.accounts import Principal
from wavforge.core.context import Context
from wavforge.errors import Unauthorized


def get_context(request: Request) -> Context:
    context: Context = request.app.state.context
    return context


async def get_principal(request: Request) -> Principal:
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise Unauthorized()
    context = get_context(request)
    return await run_in_threadpool(accounts.authenticate, context.db, key.strip())


ContextDep = Annotated[Context, Depends(get_context)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
