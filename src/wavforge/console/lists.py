"""The console's long lists: tracks, WAV tasks and the credit history, paged, searched and
filtered by :mod:`wavforge.core.listing` (as the API's ``.../search``), and the Tracks page's
bulk convert and retry, which submit through the same path as every other conversion.

A list is a fragment of its own (``/console/partials/.../list``) that the page loads and that
re-renders itself; its filters travel as query-string or form fields, the page's position as
``cursor``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse
from starlette.datastructures import FormData

from wavforge.console.routes import CONSOLE_NAMES, _fragment, output_options
from wavforge.core import archive, deletion, history, ledger, listing, wav_tasks
from wavforge.core.context import Context
from wavforge.core.requests import WavRequest
from wavforge.dialects import DIALECTS
from wavforge.errors import Conflict, InvalidRequest, WavforgeError
from wavforge.http import submissions
from wavforge.http.deps import ContextDep, PrincipalDep, SubmitterDep

router = APIRouter(prefix="/console/partials", include_in_schema=False)

TrackIdPath = Path(..., max_length=128)
TaskIdPath = Path(..., max_length=128)
FILTERS = ("q", "status", "since", "until", "output", "limit")
CONSOLE_LIMIT = 50
LEDGER_LIMIT = 10


def raw_filters(values: Mapping[str, Any]) -> dict[str, str]:
    """The list fields of a query string or form, as sent (checked by listing.parse)."""
    return {name: str(values[name]) for name in (*FILTERS, "cursor") if values.get(name)}


def _query(kind: str, raw: Mapping[str, str], statuses: frozenset[str]) -> listing.Query:
    return listing.parse(
        kind,
        limit=raw.get("limit") or CONSOLE_LIMIT,
        cursor=raw.get("cursor"),
        q=raw.get("q"),
        status=raw.get("status"),
        statuses=statuses,
        since=raw.get("since"),
        until=raw.get("until"),
        output=raw.get("output"),
    )


def _links(raw: Mapping[str, str], page: listing.Page[Any]) -> dict[str, Any]:
    """The query strings of this page (to re-render it), the first, previous and next one."""
    filters = {name: value for name, value in raw.items() if name != "cursor"}

    def at(cursor: str | None) -> str | None:
        return urlencode(filters | {"cursor": cursor}) if cursor else None

    return {
        "filters": filters,
        "cursor": raw.get("cursor", ""),
        "here": urlencode(raw),
        "first": urlencode(filters) if page.prev_cursor else None,
        "previous": at(page.prev_cursor),
        "next": at(page.next_cursor),
    }


# --- tracks -----------------------------------------------------------------------------------


def _tracks(ctx: Context, account_id: str, raw: Mapping[str, str]) -> dict[str, Any]:
    query = _query("tracks", raw, history.TRACK_STATES)
    page = history.track_page(ctx, account_id, query)
    return {"page": page} | _links(raw, page)


@router.get("/tracks/list", response_class=HTMLResponse)
async def track_list(request: Request, ctx: ContextDep, who: PrincipalDep) -> HTMLResponse:
    raw = raw_filters(request.query_params)
    found = await ctx.db.run_in_thread(_tracks, ctx, who.account_id, raw)
    return _fragment(request, "tracks_list", **found)


@router.get("/tracks/{track_id}/wav", response_class=HTMLResponse)
async def track_wav(
    request: Request, ctx: ContextDep, who: PrincipalDep, track_id: str = TrackIdPath
) -> HTMLResponse:
    """A track row's WAV cell; polled while its newest task runs."""
    row = await ctx.db.run_in_thread(history.track, ctx, who.account_id, track_id)
    return _fragment(request, "_track_wav", row=row, note=None)


@router.post("/tracks/{track_id}/delete", response_class=HTMLResponse)
async def delete_track(
    request: Request, ctx: ContextDep, who: PrincipalDep, track_id: str = TrackIdPath
) -> HTMLResponse:
    """Delete the track and its files (the page asked first), then show the list again."""
    raw = raw_filters(await request.form())

    def run() -> dict[str, Any]:
        deletion.delete_track(ctx, who.account_id, track_id)
        return _tracks(ctx, who.account_id, raw)

    return _fragment(request, "tracks_list", **await ctx.db.run_in_thread(run))


@router.post("/tracks/convert", response_class=HTMLResponse)
async def convert_many(request: Request, ctx: ContextDep, who: SubmitterDep) -> HTMLResponse:
    """Convert the selected tracks to one output, each through the submission path of a single
    convert; the list comes back with each row's task (its progress polls in place) or why
    that track was not converted."""
    form = await request.form()
    chosen = _chosen(form)
    options = output_options(str(form.get("output") or "source"), form.get("loudness") == "true")
    notes: dict[str, str] = {}
    for track_id in chosen:
        try:
            await submissions.submit(ctx, who.account_id, _request(track_id, options))
        except Conflict:
            notes[track_id] = "Already has a WAV in this format."
        except WavforgeError as error:
            notes[track_id] = error.message
    found = await ctx.db.run_in_thread(_tracks, ctx, who.account_id, raw_filters(form))
    converted = len(chosen) - len(notes)
    return _fragment(request, "tracks_list", **found, notes=notes, converted=converted)


def _chosen(form: FormData) -> list[str]:
    chosen = list(dict.fromkeys(str(value) for value in form.getlist("track")))
    if not chosen:
        raise InvalidRequest("select at least one track")
    if len(chosen) > listing.MAX_LIMIT or any(len(value) > 128 for value in chosen):
        raise InvalidRequest(f"select at most {listing.MAX_LIMIT} tracks")
    return chosen


def _request(track_id: str, options: Mapping[str, object]) -> WavRequest:
    return WavRequest(
        dialect=DIALECTS.default.name, audio_id=track_id, options=options, names=CONSOLE_NAMES
    )


@router.post("/tasks/{task_id}/retry", response_class=HTMLResponse)
async def retry(
    request: Request, ctx: ContextDep, who: SubmitterDep, task_id: str = TaskIdPath
) -> HTMLResponse:
    """Convert a failed task's track again, with the options it was asked with; answers the
    track's WAV cell, which then shows the new task."""
    failed = await ctx.db.run_in_thread(wav_tasks.get_wav, ctx, who.account_id, task_id)
    await submissions.submit(ctx, who.account_id, _request(failed.track_id, failed.options))
    row = await ctx.db.run_in_thread(history.track, ctx, who.account_id, failed.track_id)
    return _fragment(request, "_track_wav", row=row, note=None)


# --- WAV tasks and the credit history ---------------------------------------------------------


def _tasks(ctx: Context, account_id: str, raw: Mapping[str, str]) -> dict[str, Any]:
    page = history.wav_task_page(ctx, account_id, _query("wav-tasks", raw, history.TASK_STATES))
    return {"page": page} | _links(raw, page)


@router.get("/tasks/list", response_class=HTMLResponse)
async def task_list(request: Request, ctx: ContextDep, who: PrincipalDep) -> HTMLResponse:
    raw = raw_filters(request.query_params)
    found = await ctx.db.run_in_thread(_tasks, ctx, who.account_id, raw)
    return _fragment(request, "tasks_list", **found, max_archive=archive.MAX_MEMBERS)


@router.get("/tasks/{task_id}/row", response_class=HTMLResponse)
async def task_row(
    request: Request, ctx: ContextDep, who: PrincipalDep, task_id: str = TaskIdPath
) -> HTMLResponse:
    """A WAV task's row; polled while the task runs (the rest of the list, and what is
    selected in it, stays put)."""
    task = await ctx.db.run_in_thread(wav_tasks.get_wav, ctx, who.account_id, task_id)
    return _fragment(request, "_task_row", task=task)


def ledger_page(ctx: Context, account_id: str, raw: dict[str, str]) -> dict[str, Any]:
    """A page of an account's credit history for ``ledger_list.html``: the account's own
    (below) or, for an operator, any account's (wavforge.console.admin)."""
    query = _query("ledger", {"limit": str(LEDGER_LIMIT)} | raw, ledger.REASONS)
    page = ledger.entry_page(ctx.db, account_id, query)
    return {"page": page} | _links(raw, page)


@router.get("/ledger", response_class=HTMLResponse)
async def ledger_list(
    request: Request,
    ctx: ContextDep,
    who: PrincipalDep,
) -> HTMLResponse:
    raw = raw_filters(request.query_params)
    found = await ctx.db.run_in_thread(ledger_page, ctx, who.account_id, raw)
    return _fragment(request, "ledger_list", **found)
