"""The one place where async code hands blocking work to a thread.

A request's blocking work (DNS, staging an upload, a transaction on a database server) runs
in AnyIO's worker threads, as Starlette's own does; context variables go along. Database
work does not call this directly: it goes through :meth:`wavforge.db.database.Database.run`
and its siblings, which decide per backend whether a thread is needed at all. A ruff rule
(``TID251`` in pyproject.toml) bans ``run_in_threadpool`` everywhere, so the choice stays
in these two places.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import anyio.to_thread

P = ParamSpec("P")
T = TypeVar("T")


async def in_thread(work: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``work(*args, **kwargs)`` in a worker thread, awaited."""
    return await anyio.to_thread.run_sync(functools.partial(work, *args, **kwargs))
