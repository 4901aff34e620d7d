"""What the OpenAPI schema promises for each route, declared once for every route.

A route names its dialect, the ``data`` it answers with and the errors it can answer with;
``route`` turns that into the decorator's arguments: the dialect's success envelope around
``data``, its error envelope under the status of each error (a 409 with the existing task in
``data``), and the bearer-key requirement when the route authenticates. ``install`` finishes
the generated document: the key's security scheme, and no 422 — ``wavforge.http.errors``
answers every validation error with a 400 (or 413) envelope, so FastAPI's
``HTTPValidationError`` is never sent.

tests/test_fuzz.py holds a running server to these promises with schemathesis.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import FastAPI, Response
from pydantic import BaseModel, ConfigDict, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from wavforge.dialects import DIALECTS, Dialect
from wavforge.errors import (
    Conflict,
    Forbidden,
    Gone,
    InsufficientCredits,
    InvalidRequest,
    Maintenance,
    NotFound,
    QuotaExceeded,
    ServerError,
    TooFrequent,
    TooLarge,
    Unauthorized,
    WavforgeError,
)

Errors = tuple[type[WavforgeError], ...]

# What each kind of route can answer besides success. 413 is everywhere: the body limit applies
# to every path. 401 comes with the bearer-key requirement in the schema.
AUTHENTICATED: Errors = (InvalidRequest, Unauthorized, TooLarge, TooFrequent, ServerError)
LOOKUP: Errors = (*AUTHENTICATED, NotFound)
SUBMISSION: Errors = (*LOOKUP, QuotaExceeded, Conflict, InsufficientCredits, Maintenance)
IMPORT: Errors = (*AUTHENTICATED, Conflict, Maintenance)  # 409: an Idempotency-Key in use
ADMIN: Errors = (*AUTHENTICATED, Forbidden)
ADMIN_LOOKUP: Errors = (*ADMIN, NotFound)
DOWNLOAD: Errors = (Forbidden, NotFound, Gone, TooLarge, ServerError)
UNAUTHENTICATED: Errors = (TooLarge, ServerError)

MEANINGS: dict[int, str] = {
    400: "Invalid parameters; `msg`/`message` names the field and says why.",
    401: "No `Authorization: Bearer` header, or an unknown or revoked key.",
    403: "An admin endpoint called with another key, or a download link that was altered.",
    404: "No such record for this account (another account's id answers the same).",
    405: "Too many unfinished WAV tasks on the account (a quota, not a method error).",
    409: "A live WAV record already holds the track (`data` names it), a request with "
    "the same `Idempotency-Key` is still running, or (admin) a change that is refused: "
    "tracks still converting, the last admin account with a working key losing its rights.",
    410: "The file of this download link has expired.",
    413: "A value or the body is too long.",
    429: "Not enough credits.",
    430: "Call frequency too high for this key; retry after `Retry-After` seconds.",
    455: "System maintenance: submissions are paused, reads still work.",
    500: "Server error; the message reveals nothing.",
}

SECURITY_SCHEME = "apiKey"
BEARER: dict[str, Any] = {"security": [{SECURITY_SCHEME: []}]}
BINARY = {"schema": {"type": "string", "format": "binary"}}
RETRY_AFTER = {
    "description": "Seconds to wait.",
    "required": True,
    "schema": {"type": "integer", "minimum": 1},
}


class _SchemaOf:
    """Pydantic metadata: the JSON schema of ``model`` for whatever type it annotates."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def __get_pydantic_json_schema__(
        self, _: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return handler(self.model.__pydantic_core_schema__)


def described_by(model: Any) -> Any:
    """A response model that is ``dict[str, Any]`` on the wire and ``model`` in the schema.

    The dialects render answers as plain dicts, and FastAPI serialises a ``dict[str, Any]``
    model straight to JSON bytes. Making ``model`` itself the response model would validate
    every answer again and write it in the model's field order and types (a float field
    turns ``3`` into ``3.0``): other bytes on the wire, and work on every request. This keeps
    the bytes; the fuzz test checks that they match the schema.
    """
    return Annotated[dict[str, Any], _SchemaOf(model)]


class Health(BaseModel):
    """``GET /healthz``: not an envelope, so load balancers can read it as it is."""

    model_config = ConfigDict(extra="forbid")

    status: str
    version: str


def route(
    dialect: Dialect, data: Any, errors: Errors, openapi_extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Keyword arguments of a route decorator answering ``data`` or one of ``errors``, in
    ``dialect``'s envelopes."""
    extra = BEARER if Unauthorized in errors else {}
    return {
        "response_model": described_by(dialect.answer_model[data]),
        "responses": responses(dialect, errors),
        "openapi_extra": extra | (openapi_extra or {}),
    }


def responses(dialect: Dialect, errors: Errors) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route: each error's status, described, in the dialect's
    envelope. The schema numbers errors as the default profile does; docs/api.md lists the
    other profiles' numbers."""
    return {error.code: _response(dialect, error) for error in sorted(errors, key=_code)}


def _response(dialect: Dialect, error: type[WavforgeError]) -> dict[str, Any]:
    response: dict[str, Any] = {
        "model": dialect.conflict_model if error is Conflict else dialect.error_model,
        "description": MEANINGS[error.code],
    }
    if error is TooFrequent:
        response["headers"] = {"Retry-After": RETRY_AFTER}
    return response


def _code(error: type[WavforgeError]) -> int:
    return error.code


def health_route() -> dict[str, Any]:
    return {
        "response_model": described_by(Health),
        "responses": responses(DIALECTS.default, UNAUTHENTICATED),
    }


def download_route() -> dict[str, Any]:
    """A signed download: the file, a byte range of it, or a Suno error envelope."""
    files = {"audio/*": BINARY, "application/octet-stream": BINARY}
    parameters = [
        _parameter("expires", "query", "Unix time the link stops working."),
        _parameter("signature", "query", "The link's HMAC; any change answers 403."),
        _parameter("Range", "header", "One range, `bytes=start-end`.", required=False),
    ]
    answers: dict[int | str, dict[str, Any]] = {
        200: {"description": "The file.", "content": files},
        206: {"description": "The requested byte range.", "content": files},
        416: {"description": "The range is not satisfiable (no body)."},
    }
    return {
        "response_class": Response,  # no media type: FastAPI adds no JSON 200 of its own
        "responses": answers | responses(DIALECTS.default, DOWNLOAD),
        "openapi_extra": {"parameters": parameters},
    }


def _parameter(name: str, where: str, description: str, required: bool = True) -> dict[str, Any]:
    return {
        "name": name,
        "in": where,
        "required": required,
        "description": description,
        "schema": {"type": "string"},
    }


def install(app: FastAPI) -> None:
    """Finish the schema FastAPI generates: the bearer-key scheme, and no 422 answers."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        fresh = app.openapi_schema is None
        schema = generate()
        if fresh:
            _finish(schema)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _finish(schema: dict[str, Any]) -> None:
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            operation.get("responses", {}).pop("422", None)
    components = schema.setdefault("components", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        components.get("schemas", {}).pop(unused, None)
    components.setdefault("securitySchemes", {})[SECURITY_SCHEME] = {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key, from `wavforge keys create` or the console.",
    }
