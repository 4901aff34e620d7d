"""The outermost ASGI layer: a request id for every request, its time in the histogram, and
its line in the access log.

A pure ASGI middleware rather than Starlette's ``BaseHTTPMiddleware``: it runs on every
request, and wrapping ``send`` costs microseconds where ``BaseHTTPMiddleware`` costs a task
and a stream per request. It must sit outside every other layer, including the one that
turns a crash into a 500 and the body-size limit that answers 413 before any route runs, so
that every answer carries ``X-Request-ID`` and is timed.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Sequence

from starlette.routing import BaseRoute, Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wavforge.observability.logs import REQUEST_ID
from wavforge.observability.metrics import HTTP_REQUEST_DURATION

access_log = logging.getLogger("wavforge.access")

HEADER = b"x-request-id"
# A client's id is kept only if it is short and plain: it goes into headers and log lines.
ACCEPTED_ID = re.compile(rb"[A-Za-z0-9._:-]{1,64}")
UNMATCHED = "unmatched"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RequestObserver:
    """Gives each HTTP request an id (the client's ``X-Request-ID`` if acceptable, else a new
    one), sets it for the request's log lines, returns it in the answer's ``X-Request-ID``,
    and observes the request's duration by method, route template and status."""

    def __init__(
        self, app: ASGIApp, routes: Sequence[BaseRoute], *, log_requests: bool = False
    ) -> None:
        self.app = app
        self.routes = routes
        self.log_requests = log_requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        # 128 random bits as hex, like a uuid4's, at a fifth of the cost of building one.
        request_id = accepted_id(scope["headers"]) or secrets.token_hex(16)
        token = REQUEST_ID.set(request_id)
        root_path = scope.get("root_path", "")
        status = 500  # what the client gets if the app fails before answering
        id_header = (HEADER, request_id.encode())
        # Shared with every copy of the scope below, so the key's id noted by authentication
        # (``request.state.key_id``) is seen here.
        state = scope.setdefault("state", {})

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), id_header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # Starlette answers a crash with the app's 500 and then raises it again for the
            # server to log; the app's handler has logged it already (once, with the
            # request's id). Anything it has not logged goes on up to the server.
            if not logged_crash(scope):
                raise
        finally:
            route = self._route(scope, root_path, status)
            method = scope["method"] if scope["method"] in METHODS else "other"
            seconds = time.perf_counter() - started
            HTTP_REQUEST_DURATION.labels(method, route, str(status)).observe(seconds)
            if self.log_requests:
                _log_request(scope, status, seconds, state.get("key_id"))
            REQUEST_ID.reset(token)

    def _route(self, scope: Scope, root_path: str, status: int) -> str:
        """The template of the route that took the request; ``unmatched`` for none.

        The router leaves the route in the scope. It leaves none for a mount's files, nor
        when an earlier layer answered (a 413 before the body was read); those are matched
        here, rarely enough to cost nothing. A 404 without a route had no route to find.
        """
        route = scope.get("route")
        if route is not None:
            return str(getattr(route, "path", UNMATCHED))
        if status == 404:
            return UNMATCHED
        return template_for({**scope, "root_path": root_path}, self.routes)


def _log_request(scope: Scope, status: int, seconds: float, key_id: str | None) -> None:
    """``GET /api/v1/wav/record-info 200 1.4 ms key_id=key_…``: never the key, nor the query
    string (a download link's signature lives there); the line carries the request id."""
    path = scope.get("root_path", "") + scope["path"]
    access_log.info(
        "%s %s %d %.1f ms key_id=%s",
        scope["method"][:16], path[:512], status, seconds * 1000, key_id or "-",
    )  # fmt: skip


CRASH_LOGGED = "crash_logged"


def note_logged_crash(scope: Scope) -> None:
    """Say that this request's crash is logged, so no layer above logs it again."""
    scope.setdefault("state", {})[CRASH_LOGGED] = True


def logged_crash(scope: Scope) -> bool:
    return bool(scope.get("state", {}).get(CRASH_LOGGED))


def accepted_id(headers: Sequence[tuple[bytes, bytes]]) -> str | None:
    """The client's request id, if it sent one of the accepted shape."""
    for name, value in headers:
        if name == HEADER:
            return value.decode("ascii") if ACCEPTED_ID.fullmatch(value) else None
    return None


def template_for(scope: Scope, routes: Sequence[BaseRoute]) -> str:
    for route in routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            path = str(getattr(route, "path", UNMATCHED))
            return f"{path}/{{path}}" if isinstance(route, Mount) else path
    return UNMATCHED
