"""Every error leaves through here, in its dialect's envelope and its caller's numbering.

The path chooses the dialect (``DIALECTS.for_path``): the shape of the body. The caller's
vendor profile (``wavforge.profiles``), noted on the request when its key was checked,
chooses the code in it and the HTTP status; a request refused before that (a body that is
not JSON) has its key looked up here, and one without a valid key gets the server's default
profile. Framework errors are translated to the contract's codes: validation → 400 (or 413
for an over-long value), unknown path *and wrong method* → 404 (the vendors never answer 405
for a method), anything unexpected → 500 with a message that reveals nothing. The OpenAPI
schema is told so here too (``openapi.install``): FastAPI would document a 422 that never
leaves.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from wavforge.core import accounts
from wavforge.dialects import DIALECTS
from wavforge.errors import (
    InvalidRequest,
    MalformedBody,
    NotFound,
    ServerError,
    TooLarge,
    Unauthorized,
    WavforgeError,
)
from wavforge.http import openapi
from wavforge.http.deps import note_profile, server_profile
from wavforge.observability.requests import note_logged_crash
from wavforge.profiles import Profile

log = logging.getLogger(__name__)

BAD_TEXT = "text must be valid Unicode (a JSON string holds half of a surrogate pair)"


def noted_profile(request: Request) -> Profile:
    found = getattr(request.state, "profile", None)
    return found if isinstance(found, Profile) else server_profile(request)


async def profile_of(request: Request) -> Profile:
    """The caller's profile, also when the request failed before its key was checked (a
    body that is not JSON is refused before any dependency runs): then the key is looked
    up here. Without a valid key, the server's default."""
    if not isinstance(getattr(request.state, "profile", None), Profile):
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and key.strip():
            ctx = request.app.state.context
            try:
                who = await ctx.db.run(accounts.authenticate, ctx.db, key.strip())
            except WavforgeError:
                return server_profile(request)
            note_profile(request, who.profile)
    return noted_profile(request)


def render(path: str, profile: Profile, error: WavforgeError) -> tuple[dict[str, Any], int]:
    """The body and HTTP status of ``error`` on ``path`` for a caller with ``profile``."""
    code = profile.code(error)
    return DIALECTS.for_path(path).error(error, code), profile.http_status(code)


async def render_for(request: Request, error: WavforgeError) -> tuple[dict[str, Any], int]:
    return render(request.url.path, await profile_of(request), error)


async def error_response(request: Request, error: WavforgeError) -> JSONResponse:
    body, status = await render_for(request, error)
    return JSONResponse(body, status_code=status, headers=error.headers or None)


def _from_validation(error: RequestValidationError) -> WavforgeError:
    problems = error.errors()
    first = problems[0] if problems else {}
    kind = str(first.get("type", ""))
    field = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
    if kind == "json_invalid" or (kind == "model_attributes_type" and field == "body"):
        return MalformedBody()
    if kind == "string_too_long":
        return TooLarge(f"{field} is too long")
    if kind == "missing":
        return InvalidRequest(f"{field} is required")
    return InvalidRequest(f"{field}: {first.get('msg', 'invalid value')}")


def _from_http(error: StarletteHTTPException) -> WavforgeError:
    if isinstance(error.__cause__, WavforgeError):
        # FastAPI reads the body itself and answers any failure while reading it with a
        # 400; the body-size limit's 413 (a chunked body past the limit) is its cause.
        return error.__cause__
    if error.status_code in (404, 405):
        return NotFound("invalid request method or path")
    if error.status_code == 401:
        return Unauthorized()
    if error.status_code == 413:
        return TooLarge()
    if 400 <= error.status_code < 500:
        return InvalidRequest(str(error.detail))
    return ServerError()


def install(app: FastAPI) -> None:
    async def on_domain(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, WavforgeError)
        return await error_response(request, exc)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return await error_response(request, _from_validation(exc))

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        return await error_response(request, _from_http(exc))

    async def on_bad_text(request: Request, exc: Exception) -> JSONResponse:
        # A JSON string may escape half of a surrogate pair ("\ud800"), which no database
        # can store: the client's text, not a server fault.
        return await error_response(request, InvalidRequest(BAD_TEXT))

    async def on_crash(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        note_logged_crash(request.scope)
        return await error_response(request, ServerError())

    app.add_exception_handler(WavforgeError, on_domain)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(UnicodeEncodeError, on_bad_text)
    app.add_exception_handler(Exception, on_crash)
    openapi.install(app)
