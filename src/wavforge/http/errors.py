"""Every error leaves through here, in its dialect's envelope and its caller's numbering.

The path chooses the dialect (``DIALECTS.for_path``): the shape of the body. The caller's
vendor profile, noted on the request when its key was checked, chooses the code in it and
the HTTP status (``wavforge.profiles``); a request refused before its key was read gets the
default profile. Framework errors are translated to the contract's codes: validation → 400
(or 413 for an over-long value), unknown path *and wrong method* → 404 (the vendors never
answer 405 for a method), anything unexpected → 500 with a message that reveals nothing. The
OpenAPI schema is told so here too (``openapi.install``): FastAPI would document a 422 that
never leaves.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from wavforge import profiles
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
from wavforge.profiles import Profile

log = logging.getLogger(__name__)


def note_profile(request: Request, name: str | None) -> None:
    """Remember the caller's vendor profile for every answer to this request."""
    request.state.profile = profiles.named(name, server_profile(request))


def server_profile(request: Request) -> Profile:
    """The operator's default (``WAVFORGE_PROFILE``), for callers without one of their own."""
    return profiles.named(request.app.state.context.settings.profile)


def profile_of(request: Request) -> Profile:
    found = getattr(request.state, "profile", None)
    return found if isinstance(found, Profile) else server_profile(request)


def render(path: str, profile: Profile, error: WavforgeError) -> tuple[dict[str, Any], int]:
    """The body and HTTP status of ``error`` on ``path`` for a caller with ``profile``."""
    code = profile.code(error)
    return DIALECTS.for_path(path).error(error, code), profile.http_status(code)


def render_for(request: Request, error: WavforgeError) -> tuple[dict[str, Any], int]:
    return render(request.url.path, profile_of(request), error)


def error_response(request: Request, error: WavforgeError) -> JSONResponse:
    body, status = render_for(request, error)
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
        return error_response(request, exc)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return error_response(request, _from_validation(exc))

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        return error_response(request, _from_http(exc))

    async def on_crash(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return error_response(request, ServerError())

    app.add_exception_handler(WavforgeError, on_domain)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_crash)
    openapi.install(app)
