"""What both clients need from httpx, in one place: where to send, the request's arguments,
and the translation of httpx's errors into the client's (the only place they are caught).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from wavforge_client._errors import ClientError, ConnectionFailed, UnexpectedResponse
from wavforge_client._protocol import Request
from wavforge_client._version import __version__

DEFAULT_URL = "http://127.0.0.1:8000"
URL_VARIABLE = "WAVFORGE_URL"
KEY_VARIABLE = "WAVFORGE_API_KEY"
USER_AGENT = f"wavforge-client/{__version__}"
DEFAULT_TIMEOUT = 30.0


@dataclass(frozen=True)
class Endpoint:
    """A server and the key to use with it. The key is left out of the repr, and only ever
    sent in the ``Authorization`` header of API requests — never with a download, whose
    signed link may point at another host."""

    base_url: str
    key: str = field(repr=False)

    @classmethod
    def make(cls, base_url: str, api_key: str) -> Endpoint:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"base URL must be http:// or https://, not {base_url!r}")
        if not api_key or any(c.isspace() or not c.isprintable() for c in api_key):
            raise ValueError("the API key is empty or holds spaces or control characters")
        return cls(base_url.rstrip("/"), api_key)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Endpoint:
        env = os.environ if environ is None else environ
        key = env.get(KEY_VARIABLE)
        if not key:
            raise ValueError(f"set {KEY_VARIABLE} to an API key (`wavforge keys create`)")
        return cls.make(env.get(URL_VARIABLE) or DEFAULT_URL, key)

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def origin(self) -> str:
        return _origin(self.base_url)


def client_options(endpoint: Endpoint, timeout: float) -> dict[str, Any]:
    """Arguments for ``httpx.Client``/``AsyncClient``; no Authorization among the defaults."""
    return {
        "base_url": endpoint.base_url,
        "timeout": timeout,
        "headers": {"User-Agent": USER_AGENT},
        "follow_redirects": False,
    }


def arguments(request: Request, endpoint: Endpoint, files: ExitStack) -> dict[str, Any]:
    """``httpx.request`` arguments; paths to upload are opened on ``files`` (streamed, and
    opened again should the request be sent again)."""
    uploads = [
        (
            "file",
            (
                u.name,
                u.content
                if isinstance(u.content, bytes)
                else files.enter_context(u.content.open("rb")),
            ),
        )
        for u in request.uploads
    ]
    return {
        "method": request.method,
        "url": request.path,
        "params": request.params,
        "json": request.json,
        "files": uploads or None,
        "data": request.form if uploads else None,
        "headers": {**request.headers, **endpoint.auth()},
    }


@contextlib.contextmanager
def translated(url: str) -> Iterator[None]:
    """httpx's errors as the client's; the message names the server, never a header."""
    try:
        yield
    except httpx.HTTPError as error:
        raise translate(error, url) from None


def translate(error: httpx.HTTPError, url: str) -> ClientError:
    what = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    if isinstance(error, httpx.TransportError):
        return ConnectionFailed(f"cannot reach {_origin(url)}: {what}")
    if isinstance(error, httpx.DecodingError | httpx.TooManyRedirects | httpx.HTTPStatusError):
        status = error.response.status_code if isinstance(error, httpx.HTTPStatusError) else 0
        return UnexpectedResponse(f"{_origin(url)} answered unreadably: {what}", status)
    return ClientError(f"request to {_origin(url)} failed: {what}")


def _origin(url: str) -> str:
    """Scheme, host and port: a signed link's query is a credential of its own."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}"
