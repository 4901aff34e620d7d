"""uvicorn's HTTP protocol with a deadline for a request's head.

uvicorn closes idle keep-alive connections, but a client that connects and then sends its
request line and headers a byte at a time holds a connection (and its memory) for as long
as it likes; enough of them and nobody else gets one. Here each request's head must arrive
whole within ``header_timeout`` seconds of its first byte — or of the connection, for the
first request — or the connection is closed.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["with_header_timeout"]


def with_header_timeout(seconds: float) -> type[asyncio.Protocol]:
    """The protocol class to give uvicorn (``http=``)."""

    class HeaderDeadline(HttpToolsProtocol):
        header_timeout = seconds

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._head_deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._arm()

        def on_headers_complete(self) -> None:
            self._disarm()
            super().on_headers_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._disarm()
            self._head_deadline = self.loop.call_later(self.header_timeout, self._too_slow)

        def _disarm(self) -> None:
            if self._head_deadline is not None:
                self._head_deadline.cancel()
                self._head_deadline = None

        def _too_slow(self) -> None:
            self._head_deadline = None
            if not self.transport.is_closing():
                self.transport.close()

    return HeaderDeadline
