"""Every error leaves through here, as its dialect's envelope with the HTTP status mirrored.

Framework errors are translated to the contract's codes: validation → 400 (or 413 for an
over-long value), unknown path *and wrong method* → 404 (the vendors never answer 405 for a
method), anything unexpected → 500 with a message that reveals nothing. The OpenAPI schema is
told so here too (``openapi.install``): FastAPI would document a 422 that never leaves.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from wavforge.dialects import suno, unified
from wavforge.errors import (
    InvalidRequest,
    NotFound,
    ServerError,
    TooLarge,
    Unauthorized,
    WavforgeError,
)
from wavforge.http import openapi

log = logging.getLogger(__name__)

ErrorBody = Callable[[WavforgeError], dict[str, Any]]


UNIFIED_PREFIX = "/api/generate/"


def body_for(path: str) -> ErrorBody:
    """The envelope of the dialect a path belongs to (Suno's for everything else)."""
    return unified.error if path.startswith(UNIFIED_PREFIX) else suno.error


def error_response(request: Request, error: WavforgeError) -> JSONResponse:
    body = body_for(request.url.path)(error)
    return JSONResponse(body, status_code=error.code, headers=error.headers or None)


def _from_validation(error: RequestValidationError) -> WavforgeError:
    problems = error.errors()
    first = problems[0] if problems else {}
    kind = str(first.get("type", ""))
    field = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
    if kind == "json_invalid" or (kind == "model_attributes_type" and field == "body"):
        return InvalidRequest("request body must be a JSON object")
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
