"""The console's pages and the fragments htmx swaps into them.

A page (``/console/...``) is a shell that needs no key: it carries the layout and the sign-in
form. Everything with data is a fragment under ``/console/partials/...`` that authenticates like
the API — a ``Bearer`` key, which ``console.js`` adds from the tab's ``sessionStorage``. A key
therefore never sits in a URL or a cookie, and no other site can make the browser act with it
(there is no ambient credential to forge a request with).

Fragments call the same core functions as the API; the console has no rules of its own.
"""

from __future__ import annotations

from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates

from wavforge.console import formatting
from wavforge.core import (
    accounts,
    delivery_log,
    history,
    listing,
    maintenance,
    wav_tasks,
)
from wavforge.core.accounts import IssuedKey, Principal
from wavforge.core.context import Context
from wavforge.core.requests import WavRequest
from wavforge.dialects import DIALECTS
from wavforge.errors import InvalidRequest
from wavforge.http import submissions
from wavforge.http.deps import ContextDep, PrincipalDep, SubmitterDep
from wavforge.profiles import PROFILES

HERE = FilePath(__file__).parent
STATIC_DIR = HERE / "static"

templates = Jinja2Templates(directory=HERE / "templates")
templates.env.filters.update(formatting.FILTERS)
templates.env.tests.update(formatting.TESTS)
templates.env.globals["profiles"] = PROFILES

router = APIRouter(prefix="/console", include_in_schema=False)

# A page may run only its own scripts; wavesurfer needs inline styles in its shadow DOM. Audio
# streams from the signed download links (Range requests), never from blob: copies. Framing
# is refused so a key field cannot be overlaid by another site.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; media-src 'self'; connect-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}
FRAGMENT_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}

PAGES = {
    "overview": ("/console", "Overview"),
    "tracks": ("/console/tracks", "Tracks"),
    "tasks": ("/console/tasks", "WAV tasks"),
    "keys": ("/console/keys", "Keys and webhooks"),
    "admin": ("/console/admin", "Administration"),
}

# The output choices offered by the Convert button, as OutputOptions fields; the WAV task
# list filters by the same names.
OUTPUTS = listing.OUTPUTS
CONSOLE_NAMES = {
    "task_id": "task",
    "audio_id": "track",
    "bit_depth": "bit depth",
    "sample_format": "sample format",
    "sample_rate": "sample rate",
}


def output_options(output: str, loudness: bool) -> dict[str, object]:
    """The options of a named output choice, with loudness measured when ticked."""
    if output not in OUTPUTS:
        raise InvalidRequest(f"unknown output {output!r}")
    return {**OUTPUTS[output][1], **({"loudness": True} if loudness else {})}


PORTAL_PAGE = 20  # webhook deliveries per page on the Keys and webhooks page

TaskIdPath = Path(..., max_length=128)
KeyIdPath = Path(..., max_length=128)
AccountIdPath = Path(..., max_length=128)
TrackIdPath = Path(..., max_length=128)


# --- pages ------------------------------------------------------------------------------------


def _page(request: Request, page: str, partial: str, **extra: Any) -> HTMLResponse:
    context = {"page": page, "pages": PAGES, "title": extra.pop("title", PAGES[page][1])}
    response = templates.TemplateResponse(
        request, "page.html", context | {"partial": partial, **extra}
    )
    response.headers.update(PAGE_HEADERS)
    return response


@router.get("", response_class=HTMLResponse)
async def overview_page(request: Request) -> HTMLResponse:
    return _page(request, "overview", "/console/partials/overview")


@router.get("/tracks", response_class=HTMLResponse)
async def tracks_page(request: Request) -> HTMLResponse:
    return _page(request, "tracks", "/console/partials/tracks")


@router.get("/tasks", response_class=HTMLResponse)
async def tasks_page(request: Request) -> HTMLResponse:
    return _page(request, "tasks", "/console/partials/tasks")


@router.get("/tasks/{task_id}", response_class=HTMLResponse)
async def task_page(request: Request, task_id: str = TaskIdPath) -> HTMLResponse:
    return _page(request, "tasks", f"/console/partials/tasks/{task_id}", title="WAV task")


@router.get("/keys", response_class=HTMLResponse)
async def keys_page(request: Request) -> HTMLResponse:
    return _page(request, "keys", "/console/partials/keys")


@router.get("/admin", response_class=HTMLResponse)
async def admin_page(request: Request) -> HTMLResponse:
    return _page(request, "admin", "/console/partials/admin")


@router.get("/admin/accounts/{account_id}", response_class=HTMLResponse)
async def account_page(request: Request, account_id: str = AccountIdPath) -> HTMLResponse:
    """One account in detail (its fragment is in wavforge.console.admin)."""
    partial = f"/console/partials/admin/accounts/{account_id}"
    return _page(request, "admin", partial, title="Account")


# --- fragments --------------------------------------------------------------------------------


def _fragment(request: Request, name: str, **context: Any) -> HTMLResponse:
    response = templates.TemplateResponse(request, f"partials/{name}.html", context)
    response.headers.update(FRAGMENT_HEADERS)
    return response


@router.get("/partials/overview", response_class=HTMLResponse)
async def overview(request: Request, ctx: ContextDep, who: PrincipalDep) -> HTMLResponse:
    def read() -> dict[str, Any]:
        return {
            "account": accounts.get_account(ctx.db, who.account_id),
            "usage": history.usage(ctx, who.account_id),
            "recent": history.wav_tasks(ctx, who.account_id, 5),
            "maintenance": maintenance.is_on(ctx.db),
        }

    return _fragment(request, "overview", **await ctx.db.run_in_thread(read))


@router.get("/partials/service", response_class=HTMLResponse)
async def service(request: Request, ctx: ContextDep, _: PrincipalDep) -> HTMLResponse:
    """The banner every page shows while maintenance mode is on (empty otherwise)."""
    on = await ctx.db.run_in_thread(maintenance.is_on, ctx.db)
    return _fragment(request, "service", maintenance=on)


@router.get("/partials/tracks", response_class=HTMLResponse)
async def tracks(request: Request, ctx: ContextDep, who: PrincipalDep) -> HTMLResponse:
    """The page's frame; the list is a fragment of its own (wavforge.console.lists)."""
    return _fragment(
        request, "tracks", outputs=OUTPUTS, states=formatting.state_choices(history.TRACK_STATES)
    )


@router.post("/partials/tracks/{track_id}/convert")
async def convert(
    ctx: ContextDep,
    who: SubmitterDep,
    output: Annotated[str, Form(max_length=20)] = "source",
    loudness: Annotated[bool, Form()] = False,
    track_id: str = TrackIdPath,
) -> Response:
    """Start a conversion and open its page, where the progress shows."""
    request = WavRequest(
        dialect=DIALECTS.default.name,
        audio_id=track_id,
        options=output_options(output, loudness),
        names=CONSOLE_NAMES,
    )
    record = await submissions.submit(ctx, who.account_id, request)
    return Response(status_code=204, headers={"HX-Redirect": f"/console/tasks/{record.id}"})


@router.get("/partials/tasks", response_class=HTMLResponse)
async def tasks(request: Request, ctx: ContextDep, who: PrincipalDep) -> HTMLResponse:
    return _fragment(
        request, "tasks", outputs=OUTPUTS, states=formatting.state_choices(history.TASK_STATES)
    )


@router.get("/partials/tasks/{task_id}", response_class=HTMLResponse)
async def task(
    request: Request, ctx: ContextDep, who: PrincipalDep, task_id: str = TaskIdPath
) -> HTMLResponse:
    return _fragment(request, "task", **await ctx.db.run_in_thread(_task, ctx, who, task_id))


@router.get("/partials/tasks/{task_id}/live", response_class=HTMLResponse)
async def task_live(
    request: Request, ctx: ContextDep, who: PrincipalDep, task_id: str = TaskIdPath
) -> HTMLResponse:
    """What changes while a task runs; polled until it ends, so the source player stays put."""
    return _fragment(request, "task_live", **await ctx.db.run_in_thread(_task, ctx, who, task_id))


def _task(ctx: Context, who: Principal, task_id: str) -> dict[str, Any]:
    record = wav_tasks.get_wav(ctx, who.account_id, task_id)
    return {
        "task": record,
        "source": history.track(ctx, who.account_id, record.track_id),
        "analysis": formatting.analysis_rows(record.analysis),
        "deliveries": delivery_log.for_task(ctx, who.account_id, task_id),
    }


@router.get("/partials/keys", response_class=HTMLResponse)
async def keys(request: Request, ctx: ContextDep, who: PrincipalDep) -> HTMLResponse:
    return _fragment(request, "keys", **await ctx.db.run_in_thread(_keys, ctx, who))


def _keys(ctx: Context, who: Principal, issued: IssuedKey | None = None) -> dict[str, Any]:
    return {
        "account": accounts.get_account(ctx.db, who.account_id),
        "keys": accounts.list_keys(ctx.db, who.account_id),
        "current_key_id": who.key_id,
        "issued": issued,
        # The webhook portal (console/webhooks.py), first page, unfiltered.
        "found": delivery_log.page(ctx, who.account_id, delivery_log.parse(limit=PORTAL_PAGE)),
        "filters": {},
    }


@router.post("/partials/keys", response_class=HTMLResponse)
async def create_key(
    request: Request,
    ctx: ContextDep,
    who: PrincipalDep,
    name: Annotated[str, Form(min_length=1, max_length=200)],
    profile: Annotated[str, Form(max_length=20)] = "",
) -> HTMLResponse:
    def run() -> dict[str, Any]:
        issued = accounts.create_key(ctx.db, who.account_id, name.strip(), profile or None)
        return _keys(ctx, who, issued)

    return _fragment(request, "keys", **await ctx.db.run_in_thread(run))


@router.post("/partials/keys/{key_id}/reset", response_class=HTMLResponse)
async def reset_key(
    request: Request, ctx: ContextDep, who: PrincipalDep, key_id: str = KeyIdPath
) -> HTMLResponse:
    def run() -> dict[str, Any]:
        return _keys(ctx, who, accounts.reset_key(ctx.db, key_id, who.account_id))

    return _fragment(request, "keys", **await ctx.db.run_in_thread(run))


@router.post("/partials/keys/{key_id}/revoke", response_class=HTMLResponse)
async def revoke_key(
    request: Request, ctx: ContextDep, who: PrincipalDep, key_id: str = KeyIdPath
) -> HTMLResponse:
    def run() -> dict[str, Any]:
        accounts.revoke_key(ctx.db, key_id, who.account_id)
        return _keys(ctx, who) | {"just_revoked": key_id}

    return _fragment(request, "keys", **await ctx.db.run_in_thread(run))


@router.post("/partials/webhook-secret/rotate", response_class=HTMLResponse)
async def rotate_secret(request: Request, ctx: ContextDep, who: PrincipalDep) -> HTMLResponse:
    def run() -> dict[str, Any]:
        accounts.rotate_webhook_secret(ctx.db, who.account_id)
        return _keys(ctx, who) | {"rotated": True}

    return _fragment(request, "keys", **await ctx.db.run_in_thread(run))
