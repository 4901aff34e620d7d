"""One callback POST: guarded, bounded in time and in what is read back, never redirected."""

from __future__ import annotations

import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import httpx

from wavforge import __version__
from wavforge.errors import WavforgeError
from wavforge.outbound.urls import PEER_ERRORS, outbound_client, pinned_stream, resolve_target

MAX_RESPONSE_BYTES = 64 * 1024
MAX_RETRY_AFTER = 3600.0  # a receiver cannot park a delivery for longer than an hour


@dataclass(frozen=True)
class Attempt:
    status_code: int | None
    error: str | None
    duration_ms: int
    retry_after: float | None = None  # seconds the receiver asked us to wait (429/503)

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def post_json(
    url: str,
    body: bytes,
    *,
    timeout: float,
    headers: dict[str, str],
    allow_private: bool,
) -> Attempt:
    """POST ``body`` (already-serialised JSON) to ``url``; never raises, reports instead."""
    started = time.monotonic()
    try:
        target = resolve_target(url, what="callback URL", allow_private=allow_private)
        all_headers = {
            "User-Agent": f"wavforge/{__version__}",
            "Content-Type": "application/json",
            **headers,
        }
        with (
            outbound_client(timeout) as client,
            pinned_stream(client, "POST", target, content=body, headers=all_headers) as response,
        ):
            _drain(response)
            retry_after = _retry_after(response) if response.status_code in (429, 503) else None
            return Attempt(response.status_code, None, _ms_since(started), retry_after)
    except WavforgeError as error:
        return Attempt(None, error.message, _ms_since(started))
    except httpx.TimeoutException:
        return Attempt(None, f"timed out after {timeout:g} s", _ms_since(started))
    except PEER_ERRORS as error:
        return Attempt(None, f"{type(error).__name__}: {error}"[:300], _ms_since(started))


def _drain(response: httpx.Response) -> None:
    """Read at most ``MAX_RESPONSE_BYTES`` of the answer; nobody needs more of it."""
    read = 0
    for chunk in response.iter_raw():
        read += len(chunk)
        if read >= MAX_RESPONSE_BYTES:
            return


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
