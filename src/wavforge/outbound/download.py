"""Fetching a source file by URL, for import: size-capped, time-limited, to a local file."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx

from wavforge.errors import InvalidRequest, TooLarge
from wavforge.outbound.urls import (
    PEER_ERRORS,
    Target,
    outbound_client,
    pinned_stream,
    resolve_target,
)

CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0
MAX_REDIRECTS = 5


def download(url: str, target: Path, *, max_bytes: int, allow_private: bool) -> str:
    """Write the body of ``url`` to ``target`` and return a file name for it.

    Redirects are followed by hand so every hop passes the guard and is pinned to the
    address it checked.
    """
    timeout = httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT)
    with outbound_client(timeout) as client:
        for _ in range(MAX_REDIRECTS + 1):
            checked = resolve_target(url, what="import URL", allow_private=allow_private)
            location = _fetch(client, checked, target, max_bytes)
            if location is None:
                return _name_from(url)
            url = location
    raise InvalidRequest("import URL redirects too many times")


def _fetch(client: httpx.Client, checked: Target, target: Path, max_bytes: int) -> str | None:
    try:
        with pinned_stream(client, "GET", checked) as response:
            if response.is_redirect and "location" in response.headers:
                return _redirect_target(checked.url, response.headers["location"])
            if response.status_code != 200:
                raise InvalidRequest(f"import URL answered HTTP {response.status_code}")
            _save(response, target, max_bytes)
            return None
    except PEER_ERRORS as error:
        raise InvalidRequest(f"import URL could not be fetched ({type(error).__name__})") from None


def _redirect_target(url: str, location: str) -> str:
    """Where a redirect points, resolved against ``url``; a 400 when it is no URL at all."""
    try:
        return str(httpx.URL(url).join(location))
    except (httpx.InvalidURL, ValueError):
        raise InvalidRequest("import URL redirects to something that is not a URL") from None


def _save(response: httpx.Response, target: Path, max_bytes: int) -> None:
    written = 0
    with target.open("wb") as out:
        for chunk in response.iter_bytes():
            written += len(chunk)
            if written > max_bytes:
                raise TooLarge(f"imported file is larger than {max_bytes} bytes")
            out.write(chunk)


def _name_from(url: str) -> str:
    return unquote(urlsplit(url).path.rsplit("/", 1)[-1]) or "download"
