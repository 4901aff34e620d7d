"""One callback POST: guarded, bounded in total time and in what is read back, never
redirected."""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import anyio
import httpx

from wavforge import __version__
from wavforge.errors import WavforgeError
from wavforge.outbound.urls import (
    PEER_ERRORS,
    outbound_client,
    pinned_stream,
    resolve_target_async,
)

MAX_RESPONSE_BYTES = 64 * 1024
PREVIEW_BYTES = 2048  # the first bytes of an answer, kept for the delivery log
MAX_HEADERS = 40  # of an answer's headers, the first ones kept
MAX_HEADER_VALUE = 500
MAX_RETRY_AFTER = 3600.0  # a receiver cannot park a delivery for longer than an hour


@dataclass(frozen=True)
class Attempt:
    status_code: int | None
    error: str | None
    duration_ms: int
    retry_after: float | None = None  # seconds the receiver asked us to wait (429/503)
    # The answer as received, bounded: the first headers (values cut) and the first bytes.
    response_headers: tuple[tuple[str, str], ...] = ()
    response_preview: bytes = b""

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def sent_headers(headers: dict[str, str]) -> dict[str, str]:
    """Every header a callback POST carries: ours, then the caller's (the signatures)."""
    return {
        "User-Agent": f"wavforge/{__version__}",
        "Content-Type": "application/json",
        "Accept-Encoding": "identity",  # the kept first bytes are then readable text
        **headers,
    }


def post_json(
    url: str,
    body: bytes,
    *,
    timeout: float,
    headers: dict[str, str],
    allow_private: bool,
) -> Attempt:
    """POST ``body`` (already-serialised JSON) to ``url``; never raises, reports instead.

    ``timeout`` bounds the whole attempt — the lookup, the connection, and every byte of the
    answer — so a receiver that trickles its answer cannot hold the attempt past it (nor
    past the delivery's lease, which would let the sweep send it again early). It runs on
    an event loop of its own in the calling thread.
    """
    started = time.monotonic()
    send = functools.partial(_post, url, body, timeout, headers, allow_private)
    try:
        return anyio.run(_within, timeout, send, started)
    except WavforgeError as error:
        return Attempt(None, error.message, _ms_since(started))
    except PEER_ERRORS as error:
        return Attempt(None, f"{type(error).__name__}: {error}"[:300], _ms_since(started))


async def _within(
    timeout: float, send: Callable[[], Awaitable[Attempt]], started: float
) -> Attempt:
    try:
        with anyio.fail_after(timeout):
            return await send()
    except (TimeoutError, httpx.TimeoutException):
        return Attempt(None, f"timed out after {timeout:g} s", _ms_since(started))


async def _post(
    url: str, body: bytes, timeout: float, headers: dict[str, str], allow_private: bool
) -> Attempt:
    started = time.monotonic()
    target = await resolve_target_async(url, what="callback URL", allow_private=allow_private)
    all_headers = sent_headers(headers)
    async with (
        outbound_client(timeout) as client,
        pinned_stream(client, "POST", target, content=body, headers=all_headers) as response,
    ):
        preview = await _drain(response)
        retry_after = _retry_after(response) if response.status_code in (429, 503) else None
        return Attempt(
            response.status_code,
            None,
            _ms_since(started),
            retry_after,
            _bounded_headers(response.headers),
            preview,
        )


async def _drain(response: httpx.Response) -> bytes:
    """Read at most ``MAX_RESPONSE_BYTES`` of the answer; return its first ``PREVIEW_BYTES``."""
    read, kept = 0, bytearray()
    async for chunk in response.aiter_raw():
        if len(kept) < PREVIEW_BYTES:
            kept += chunk[: PREVIEW_BYTES - len(kept)]
        read += len(chunk)
        if read >= MAX_RESPONSE_BYTES:
            break
    return bytes(kept)


def _bounded_headers(headers: httpx.Headers) -> tuple[tuple[str, str], ...]:
    pairs = headers.multi_items()[:MAX_HEADERS]
    return tuple((name[:100], value[:MAX_HEADER_VALUE]) for name, value in pairs)


def _retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (either form), capped; None when absent or unreadable."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
