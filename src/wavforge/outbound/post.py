"""One callback POST: bounded in time and in what is read back, redirects never followed."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx

from wavforge import __version__
from wavforge.errors import WavforgeError
from wavforge.outbound.urls import check_url

MAX_RESPONSE_BYTES = 64 * 1024


@dataclass(frozen=True)
class Attempt:
    status_code: int | None
    error: str | None
    duration_ms: int

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def post_json(
    url: str,
    body: dict[str, Any],
    *,
    timeout: float,
    headers: dict[str, str],
    allow_private: bool,
) -> Attempt:
    started = time.monotonic()
    try:
        check_url(url, what="callback URL", allow_private=allow_private)
        status = _send(url, body, timeout, headers)
        return Attempt(status, None, _ms_since(started))
    except WavforgeError as error:
        return Attempt(None, error.message, _ms_since(started))
    except httpx.TimeoutException:
        return Attempt(None, f"timed out after {timeout:g} s", _ms_since(started))
    except httpx.HTTPError as error:
        return Attempt(None, f"{type(error).__name__}: {error}"[:300], _ms_since(started))


def _send(url: str, body: dict[str, Any], timeout: float, headers: dict[str, str]) -> int:
    all_headers = {"User-Agent": f"wavforge/{__version__}", **headers}
    with (
        httpx.Client(timeout=timeout, follow_redirects=False) as client,
        client.stream("POST", url, json=body, headers=all_headers) as response,
    ):
        read = 0
        for chunk in response.iter_raw():
            read += len(chunk)
            if read >= MAX_RESPONSE_BYTES:
                break
        return response.status_code


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
