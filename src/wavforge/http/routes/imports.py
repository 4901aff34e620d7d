"""``POST /api/v1/music/import``: files (multipart) or URLs (JSON) become a music task."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache, partial
from pathlib import Path
from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.datastructures import UploadFile

from wavforge.core import tracks
from wavforge.core.context import Context
from wavforge.core.tracks import ImportMeta, StagedFile
from wavforge.dialects import SUNO, suno
from wavforge.errors import InvalidRequest, TooFrequent, TooLarge
from wavforge.http.deps import ContextDep, SubmitterDep
from wavforge.http.disconnect import unless_disconnected
from wavforge.http.idempotency import IdempotencyKey, once
from wavforge.http.openapi import IMPORT, route
from wavforge.offload import in_thread
from wavforge.outbound import download

router = APIRouter(prefix="/api/v1", tags=["Import"])

MAX_FILES = 20
SLOT_WAIT_SECONDS = 5.0


class UrlImport(BaseModel):
    model_config = ConfigDict(extra="ignore")

    urls: list[str] = Field(min_length=1, max_length=MAX_FILES)
    title: str | None = Field(default=None, max_length=400)
    tags: str = Field(default="", max_length=400)
    prompt: str = Field(default="", max_length=5000)

    def meta(self) -> ImportMeta:
        return ImportMeta(title=self.title, tags=self.tags, prompt=self.prompt)


# The body is read by hand (files or URLs), so FastAPI cannot derive it: declared here.
IMPORT_BODY = {
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {
                    "file": {
                        "type": "array",
                        "items": {"type": "string", "format": "binary"},
                        "minItems": 1,
                        "maxItems": MAX_FILES,
                    },
                    "title": {"type": "string", "maxLength": 400},
                    "tags": {"type": "string", "maxLength": 400},
                    "prompt": {"type": "string", "maxLength": 5000},
                },
                "required": ["file"],
            }
        },
        "application/json": {"schema": UrlImport.model_json_schema()},
    }
}


@router.post(
    "/music/import",
    summary="Import tracks from files or URLs",
    **route(SUNO, suno.ImportedTracks, IMPORT, openapi_extra={"requestBody": IMPORT_BODY}),
)
async def import_music(
    request: Request, ctx: ContextDep, who: SubmitterDep, idempotency_key: IdempotencyKey = None
) -> Any:
    async def run() -> dict[str, Any]:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("multipart/form-data"):
            staged, meta = await _from_form(request, ctx)
        elif content_type.startswith("application/json"):
            staged, meta = await _from_json(request, ctx)
        else:
            raise InvalidRequest("send multipart/form-data with 'file' parts, or JSON with 'urls'")
        record = await ctx.db.run_in_thread(tracks.import_files, ctx, who.account_id, staged, meta)
        return SUNO.success(suno.imported(record))

    return await once(request, ctx, who.account_id, idempotency_key, run)


async def _from_form(request: Request, ctx: Context) -> tuple[list[StagedFile], ImportMeta]:
    async with request.form(max_files=MAX_FILES, max_fields=20) as form:
        uploads = [part for part in form.getlist("file") if isinstance(part, UploadFile)]
        if not uploads:
            raise InvalidRequest("no 'file' part in the form")
        meta = ImportMeta(
            title=_text(form.get("title"), 400) or None,
            tags=_text(form.get("tags"), 400),
            prompt=_text(form.get("prompt"), 5000),
        )
        staged: list[StagedFile] = []
        try:
            for upload in uploads:
                staged.append(await in_thread(_stage_upload, ctx, upload))
        except BaseException:
            _discard(staged)
            raise
    return staged, meta


def _text(value: object, limit: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidRequest("title, tags and prompt must be text fields")
    if len(value) > limit:
        raise TooLarge(f"a text field is longer than {limit} characters")
    return value


def _scratch(ctx: Context) -> Path:
    return ctx.settings.scratch_dir / f"import-{uuid.uuid4().hex}"


def _stage_upload(ctx: Context, upload: UploadFile) -> StagedFile:
    target = _scratch(ctx)
    try:
        with target.open("wb") as out:
            shutil.copyfileobj(upload.file, out, 1024 * 1024)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return StagedFile(path=target, filename=upload.filename or "upload")


async def _from_json(request: Request, ctx: Context) -> tuple[list[StagedFile], ImportMeta]:
    try:
        body = UrlImport.model_validate_json(await request.body())
    except ValidationError as error:
        raise RequestValidationError(error.errors(include_url=False)) from None
    staged: list[StagedFile] = []
    try:
        for url in body.urls:
            staged.append(await unless_disconnected(request, partial(_stage_url, ctx, url)))
    except BaseException:
        _discard(staged)
        raise
    return staged, body.meta()


def _discard(staged: list[StagedFile]) -> None:
    """Staged files of a request that failed before the import took them over."""
    for item in staged:
        item.path.unlink(missing_ok=True)


async def _stage_url(ctx: Context, url: str) -> StagedFile:
    target = _scratch(ctx)
    settings = ctx.settings
    try:
        async with fetch_slot(settings.import_fetches):
            name = await download(
                url,
                target,
                max_bytes=settings.max_upload_bytes,
                allow_private=settings.callback_allow_private,
                deadline=settings.import_timeout_seconds,
            )
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return StagedFile(path=target, filename=name)


@asynccontextmanager
async def fetch_slot(slots: int) -> AsyncIterator[None]:
    """One of this process's ``slots`` concurrent URL fetches; when all stay taken for
    ``SLOT_WAIT_SECONDS``, a 430 with ``Retry-After`` rather than a queue without end."""
    gate = _gate(slots)
    try:
        with anyio.fail_after(SLOT_WAIT_SECONDS):
            await gate.acquire()
    except TimeoutError:
        raise TooFrequent(
            "too many URL imports in flight on this server; try again shortly",
            headers={"Retry-After": str(int(SLOT_WAIT_SECONDS))},
        ) from None
    try:
        yield
    finally:
        gate.release()


@cache
def _gate(slots: int) -> anyio.Semaphore:
    return anyio.Semaphore(slots)
