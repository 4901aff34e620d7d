"""Fetching a source file by URL, for import: size-capped, with a total deadline, cancellable.

It runs on the request's own event loop: a slow or trickling server costs a socket and a
coroutine, never a thread, and when the deadline passes or the client that asked has gone
(the caller cancels), the connection is closed at once.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

import anyio
import httpx

from wavforge.errors import InvalidRequest, TooLarge
from wavforge.outbound.urls import (
    PEER_ERRORS,
    Target,
    outbound_client,
    pinned_stream,
    resolve_target_async,
)

CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 30.0  # between two reads; the total is the caller's deadline
MAX_REDIRECTS = 5


async def download(
    url: str, target: Path, *, max_bytes: int, allow_private: bool, deadline: float
) -> str:
    """Write the body of ``url`` to ``target`` and return a file name for it.

    Redirects are followed by hand so every hop passes the guard and is pinned to the
    address it checked. The whole of it — lookups, redirects, every byte — ends within
    ``deadline`` seconds, or the import answers 400.
    """
    try:
        with anyio.fail_after(deadline):
            return await _follow(url, target, max_bytes, allow_private)
    except TimeoutError:
        raise InvalidRequest(f"import URL took longer than {deadline:g} s") from None


async def _follow(url: str, target: Path, max_bytes: int, allow_private: bool) -> str:
    timeout = httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT)
    async with outbound_client(timeout) as client:
        for _ in range(MAX_REDIRECTS + 1):
            checked = await resolve_target_async(
                url, what="import URL", allow_private=allow_private
            )
            location = await _fetch(client, checked, target, max_bytes)
            if location is None:
                return _name_from(url)
            url = location
    raise InvalidRequest("import URL redirects too many times")


async def _fetch(
    client: httpx.AsyncClient, checked: Target, target: Path, max_bytes: int
) -> str | None:
    try:
        async with pinned_stream(client, "GET", checked) as response:
            if response.is_redirect and "location" in response.headers:
                return _redirect_target(checked.url, response.headers["location"])
            if response.status_code != 200:
                raise InvalidRequest(f"import URL answered HTTP {response.status_code}")
            await _save(response, target, max_bytes)
            return None
    except PEER_ERRORS as error:
        raise InvalidRequest(f"import URL could not be fetched ({type(error).__name__})") from None


def _redirect_target(url: str, location: str) -> str:
    """Where a redirect points, resolved against ``url``; a 400 when it is no URL at all."""
    try:
        return str(httpx.URL(url).join(location))
    except (httpx.InvalidURL, ValueError):
        raise InvalidRequest("import URL redirects to something that is not a URL") from None


async def _save(response: httpx.Response, target: Path, max_bytes: int) -> None:
    """Write the body as it arrives. Chunks are at most a socket read (64 KiB) and go to
    the page cache, so writing them from the event loop costs microseconds."""
    written = 0
    with target.open("wb") as out:
        async for chunk in response.aiter_bytes():
            written += len(chunk)
            if written > max_bytes:
                raise TooLarge(f"imported file is larger than {max_bytes} bytes")
            out.write(chunk)


def _name_from(url: str) -> str:
    return unquote(urlsplit(url).path.rsplit("/", 1)[-1]) or "download"
