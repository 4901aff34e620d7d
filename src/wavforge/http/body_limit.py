"""Request-size limits, enforced while the body streams in rather than after it arrived."""

from __future__ import annotations

import json
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wavforge.errors import TooLarge
from wavforge.http.errors import render
from wavforge.profiles import Profile

JSON_BODY_LIMIT = 1024 * 1024


class BodyTooLarge(TooLarge):
    pass


class BodyLimit:
    """413 for a body over the limit of its path and content type: declared
    (Content-Length) or actual."""

    def __init__(
        self, app: ASGIApp, limit_for: Callable[[str, bytes], int], profile: Profile
    ) -> None:
        self.app = app
        self.limit_for = limit_for
        self.profile = profile  # refused before its key is read: the server's default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        limit = self.limit_for(scope["path"], headers.get(b"content-type", b""))
        declared = headers.get(b"content-length", b"0")
        if declared.isdigit() and int(declared) > limit:
            body, status = render(scope["path"], self.profile, TooLarge(_message(limit)))
            await _refuse(send, body, status)
            return
        await self.app(scope, _counting(receive, limit), send)


def _counting(receive: Receive, limit: int) -> Receive:
    seen = 0

    async def counted() -> Message:
        nonlocal seen
        message = await receive()
        seen += len(message.get("body", b""))
        if seen > limit:
            raise BodyTooLarge(_message(limit))
        return message

    return counted


def _message(limit: int) -> str:
    return f"request body is larger than {limit} bytes"


async def _refuse(send: Send, envelope: dict[str, object], status: int) -> None:
    body = json.dumps(envelope).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
