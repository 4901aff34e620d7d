"""Work that stops when the client that asked for it has gone.

Starlette lets a handler run on after its client disconnects. For work that holds something
outside the process — an outbound download — that is a resource an attacker can pile up
with requests they abandon, so such work runs under :func:`unless_disconnected`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio
from fastapi import Request

from wavforge.errors import InvalidRequest

T = TypeVar("T")
POLL_SECONDS = 0.5


class ClientGone(InvalidRequest):
    default_message = "the client closed the connection"


async def unless_disconnected(request: Request, work: Callable[[], Awaitable[T]]) -> T:
    """``await work()``, cancelled within ``POLL_SECONDS`` of the client disconnecting
    (then :class:`ClientGone`, which nobody will read). Errors of ``work`` pass as they are.
    """
    with anyio.CancelScope() as scope:
        watcher = asyncio.ensure_future(_watch(request, scope))
        try:
            return await work()
        finally:
            watcher.cancel()
    raise ClientGone()


async def _watch(request: Request, scope: anyio.CancelScope) -> None:
    while not await request.is_disconnected():
        await anyio.sleep(POLL_SECONDS)
    scope.cancel()
