"""Signed downloads: ``GET``/``HEAD /files/{kind}/{id}/{filename}?expires=&signature=``.

No Authorization header is needed — the signature is the authority — so vendor clients can
fetch with a bare GET. Single byte ranges are served, as players and download managers expect.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse

from wavforge.core import archive, clock, files
from wavforge.core.files import Download
from wavforge.errors import Forbidden, Gone
from wavforge.http.deps import ContextDep
from wavforge.http.openapi import download_route
from wavforge.links import LinkState

router = APIRouter(tags=["Files"])

RANGE = re.compile(r"bytes=(\d*)-(\d*)")
UNSATISFIABLE = object()


# One route per method: a GET+HEAD route would give both operations the same operationId.
@router.head("/files/{kind}/{ident}/{filename}", summary="Download's headers", **download_route())
@router.get("/files/{kind}/{ident}/{filename}", summary="Download", **download_route())
async def download(
    request: Request, kind: str, ident: str, filename: str, ctx: ContextDep
) -> Response:
    query = request.query_params
    state = ctx.links.check(
        kind, ident, filename, query.get("expires", ""), query.get("signature", ""), clock.now()
    )
    if state is LinkState.FORGED:
        raise Forbidden()
    if state is LinkState.EXPIRED:
        raise Gone("this download link has expired")
    if kind == archive.ARCHIVE:
        several = await ctx.db.run_in_thread(archive.opened, ctx, ident)
        if request.method == "HEAD":
            return Response(headers={"Content-Length": str(several.size)})
        return archive_response(ctx, several)
    found = await ctx.db.run_in_thread(files.resolve, ctx, kind, ident)
    return _respond(request, ctx, found)


def _respond(request: Request, ctx: ContextDep, found: Download) -> Response:
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Disposition": _disposition(found.filename),
        "Cache-Control": "private, max-age=3600",
    }
    span = _range(request.headers.get("range"), found.size)
    status = 200
    start, end = 0, found.size - 1
    if span is UNSATISFIABLE:
        headers["Content-Range"] = f"bytes */{found.size}"
        return Response(status_code=416, headers=headers)
    if isinstance(span, tuple):
        start, end = span
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end}/{found.size}"
    headers["Content-Length"] = str(end - start + 1)
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers, media_type=found.content_type)
    body = ctx.storage.open_range(found.key, start, end)
    return StreamingResponse(
        body, status_code=status, headers=headers, media_type=found.content_type
    )


def archive_response(ctx: ContextDep, found: archive.Archive) -> StreamingResponse:
    """The archive, written as it is sent (Starlette iterates it in a thread)."""
    headers = {
        "Content-Length": str(found.size),
        "Content-Disposition": f'attachment; filename="{archive.FILENAME}"',
        "Cache-Control": "private, no-store",
    }
    return StreamingResponse(
        found.stream(ctx.storage), headers=headers, media_type="application/zip"
    )


def _disposition(filename: str) -> str:
    """An ASCII fallback for old clients, and the exact UTF-8 name for the rest (RFC 6266)."""
    fallback = filename.encode("ascii", "replace").decode().replace("?", "_").replace('"', "")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename)}"


def _range(header: str | None, size: int) -> tuple[int, int] | object | None:
    """One ``bytes=a-b`` range as (start, end), UNSATISFIABLE, or None for the whole file."""
    match = RANGE.fullmatch(header.strip()) if header else None
    if match is None or match.groups() == ("", ""):
        return None
    first, last = match.groups()
    if first == "":
        start, end = max(size - int(last), 0), size - 1
    else:
        start, end = int(first), min(int(last), size - 1) if last else size - 1
    if start >= size or start > end:
        return UNSATISFIABLE
    return start, end
