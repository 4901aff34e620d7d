"""The domain's errors, each carrying the contract code it answers with.

The core raises these; the HTTP layer turns every one of them into its dialect's envelope in
one place (``wavforge.http.errors``), and the CLI prints their message. ::

    WavforgeError (500)
    ├── InvalidRequest (400)
    │   └── MalformedBody (400)  a body that is not a JSON object (kie.ai's "format error")
    ├── Unauthorized (401)
    ├── Forbidden (403)         a download link that was altered
    ├── NotFound (404)
    ├── QuotaExceeded (405)     too many unfinished tasks (the vendors' code; not a method error)
    ├── Conflict (409)          data: the existing task id
    ├── Gone (410)              a download link whose file has expired
    ├── TooLarge (413)
    ├── InsufficientCredits (429)
    ├── TooFrequent (430)       per-key request rate; carries Retry-After
    ├── Maintenance (455)
    └── ServerError (500)       message is safe to show; details go to the log only
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar


class WavforgeError(Exception):
    """Base of every error a client may see; ``message`` is safe to show.

    ``headers`` go out with the HTTP answer (``Retry-After`` on 430).
    """

    code: ClassVar[int] = 500
    default_message: ClassVar[str] = "server error"

    def __init__(
        self,
        message: str | None = None,
        *,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.data = data
        self.headers = dict(headers or {})
        super().__init__(self.message)


class InvalidRequest(WavforgeError):
    code = 400
    default_message = "invalid parameters"


class MalformedBody(InvalidRequest):
    default_message = "request body must be a JSON object"


class Unauthorized(WavforgeError):
    code = 401
    default_message = "unauthorized: send 'Authorization: Bearer <api key>' with a valid key"


class Forbidden(WavforgeError):
    code = 403
    default_message = "invalid download link"


class NotFound(WavforgeError):
    code = 404
    default_message = "not found"


class QuotaExceeded(WavforgeError):
    code = 405
    default_message = "too many unfinished tasks"


class Conflict(WavforgeError):
    code = 409
    default_message = "a WAV record already exists for this track"


class Gone(WavforgeError):
    code = 410
    default_message = "the file has expired"


class TooLarge(WavforgeError):
    code = 413
    default_message = "request too large"


class InsufficientCredits(WavforgeError):
    code = 429
    default_message = "insufficient credits"


class TooFrequent(WavforgeError):
    code = 430
    default_message = "call frequency too high"


class Maintenance(WavforgeError):
    code = 455
    default_message = "system maintenance: new submissions are paused, reads still work"


class ServerError(WavforgeError):
    code = 500
    default_message = "server error"


# One per contract code; refinements such as MalformedBody share their parent's code.
ALL_ERRORS: tuple[type[WavforgeError], ...] = (
    InvalidRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    QuotaExceeded,
    Conflict,
    Gone,
    TooLarge,
    InsufficientCredits,
    TooFrequent,
    Maintenance,
    ServerError,
)
