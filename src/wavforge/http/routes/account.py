"""An account managing itself (wavforge extensions): overview, keys, webhook secret, ledger,
and listings of its tracks and WAV tasks. The console and the Python client use these.

A key may manage only its own account's keys; an unknown or foreign key id is a 404 alike.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from wavforge.core import accounts, archive, deletion, history, ledger, listing
from wavforge.dialects import SUNO, admin, suno
from wavforge.errors import Conflict, Gone
from wavforge.http.deps import ContextDep, PrincipalDep
from wavforge.http.openapi import AUTHENTICATED, BEARER, BINARY, LOOKUP, responses, route
from wavforge.http.routes.files import archive_response

router = APIRouter(prefix="/api/v1/account", tags=["Your account"])

AudioIdPath = Path(..., max_length=128, description="A track's id (audioId).")
KeyIdPath = Path(..., max_length=128, description="A key id (see the key list).")
LedgerLimit = Query(100, ge=1, le=1000, description="Newest entries to return.")
ListLimit = Query(50, ge=1, le=history.MAX_LISTED, description="Newest rows to return.")
Sha256Query = Query(
    None,
    pattern=r"^[0-9a-f]{64}$",
    description="Only tracks imported from a file with this SHA-256 (lower-case hex): "
    "whether a file was uploaded before.",
)
# The paged listings (``.../search``): every value is checked by wavforge.core.listing.
PageLimit = Query(
    None, description=f"Rows per page, 1 to {listing.MAX_LIMIT} (default {listing.DEFAULT_LIMIT})."
)
CursorQuery = Query(
    None, max_length=listing.MAX_CURSOR, description="A page's ``nextCursor`` or ``prevCursor``."
)
SearchQuery = Query(
    None, max_length=listing.MAX_SEARCH, description="Part of the title, or the start of an id."
)
SinceQuery = Query(None, max_length=40, description="Created at or after (ISO 8601 date or time).")
UntilQuery = Query(
    None, max_length=40, description="Created before (ISO 8601; a date includes its whole day)."
)
OutputQuery = Query(None, max_length=20, description="One of: " + ", ".join(listing.OUTPUTS))


def _status(allowed: frozenset[str], what: str) -> Any:
    return Query(None, max_length=40, description=f"{what}: one of " + ", ".join(sorted(allowed)))


BeforeQuery = Query(
    None,
    max_length=128,
    description="The id of the last row of the previous page; the rows after it, to page back.",
)


@router.get(
    "",
    summary="The caller's account: balance, usage and webhook secret",
    **route(SUNO, admin.AccountOverview, AUTHENTICATED),
)
async def overview(ctx: ContextDep, who: PrincipalDep) -> dict[str, Any]:
    def read() -> dict[str, Any]:
        info = accounts.get_account(ctx.db, who.account_id)
        return admin.account(info, history.usage(ctx, who.account_id))

    return SUNO.success(await ctx.db.run_in_thread(read))


@router.get(
    "/ledger",
    summary="The caller's balance and newest ledger entries",
    **route(SUNO, admin.LedgerStatement, AUTHENTICATED),
)
async def own_ledger(
    ctx: ContextDep, who: PrincipalDep, limit: int = LedgerLimit
) -> dict[str, Any]:
    statement = await ctx.db.run_in_thread(ledger.statement, ctx.db, who.account_id, limit)
    return SUNO.success(admin.ledger(statement))


@router.get(
    "/keys",
    summary="The account's keys, by prefix",
    **route(SUNO, list[admin.ListedKey], AUTHENTICATED),
)
async def own_keys(ctx: ContextDep, who: PrincipalDep) -> dict[str, Any]:
    rows = await ctx.db.run_in_thread(accounts.list_keys, ctx.db, who.account_id)
    return SUNO.success([admin.key_info(row) for row in rows])


@router.post(
    "/keys",
    summary="Another key for the account (shown this once)",
    **route(SUNO, admin.NewKeyIssued, AUTHENTICATED),
)
async def create_key(body: admin.NewKey, ctx: ContextDep, who: PrincipalDep) -> dict[str, Any]:
    issued = await ctx.db.run_in_thread(
        accounts.create_key, ctx.db, who.account_id, body.name, body.profile
    )
    return SUNO.success(admin.issued(issued))


@router.post(
    "/keys/{key_id}/revoke",
    summary="Revoke one of the account's keys",
    **route(SUNO, admin.KeyRevoked, LOOKUP),
)
async def revoke_key(ctx: ContextDep, who: PrincipalDep, key_id: str = KeyIdPath) -> dict[str, Any]:
    await ctx.db.run_in_thread(accounts.revoke_key, ctx.db, key_id, who.account_id)
    return SUNO.success({"keyId": key_id, "revoked": True})


@router.post(
    "/keys/{key_id}/reset",
    summary="Revoke one of the account's keys and replace it",
    **route(SUNO, admin.NewKeyIssued, LOOKUP),
)
async def reset_key(ctx: ContextDep, who: PrincipalDep, key_id: str = KeyIdPath) -> dict[str, Any]:
    issued = await ctx.db.run_in_thread(accounts.reset_key, ctx.db, key_id, who.account_id)
    return SUNO.success(admin.issued(issued))


@router.post(
    "/webhook-secret/rotate",
    summary="Replace the webhook signing secret (the old one signs too for 24 hours)",
    **route(SUNO, suno.SecretRotated, AUTHENTICATED),
)
async def rotate_webhook_secret(ctx: ContextDep, who: PrincipalDep) -> dict[str, Any]:
    rotated = await ctx.db.run_in_thread(accounts.rotate_webhook_secret, ctx.db, who.account_id)
    return SUNO.success(suno.rotated_secret(rotated))


@router.get(
    "/tracks",
    summary="The account's tracks, newest first",
    **route(SUNO, list[admin.ListedTrack], LOOKUP),
)
async def own_tracks(
    ctx: ContextDep,
    who: PrincipalDep,
    limit: int = ListLimit,
    before: str | None = BeforeQuery,
    sha256: str | None = Sha256Query,
) -> dict[str, Any]:
    rows = await ctx.db.run_in_thread(history.tracks, ctx, who.account_id, limit, before, sha256)
    return SUNO.success([admin.track_listing(row) for row in rows])


@router.get(
    "/wav-tasks",
    summary="The account's WAV tasks, newest first",
    **route(SUNO, list[admin.ListedWavTask], LOOKUP),
)
async def own_wav_tasks(
    ctx: ContextDep,
    who: PrincipalDep,
    limit: int = ListLimit,
    before: str | None = BeforeQuery,
) -> dict[str, Any]:
    rows = await ctx.db.run_in_thread(history.wav_tasks, ctx, who.account_id, limit, before)
    return SUNO.success([admin.wav_listing(row) for row in rows])


@router.delete(
    "/tracks/{audio_id}",
    summary="Delete a track: its source and every WAV made from it (records stay, marked)",
    **route(SUNO, admin.TrackDeleted, (*LOOKUP, Conflict)),
)
async def delete_track(
    ctx: ContextDep, who: PrincipalDep, audio_id: str = AudioIdPath
) -> dict[str, Any]:
    deleted = await ctx.db.run_in_thread(deletion.delete_track, ctx, who.account_id, audio_id)
    return SUNO.success(admin.track_deleted(audio_id, deleted))


@router.get(
    "/tracks/search",
    summary="The account's tracks, paged by cursor, searched and filtered, with a total",
    **route(SUNO, admin.TrackPage, AUTHENTICATED),
)
async def search_tracks(
    ctx: ContextDep,
    who: PrincipalDep,
    limit: int | None = PageLimit,
    cursor: str | None = CursorQuery,
    q: str | None = SearchQuery,
    status: str | None = _status(history.TRACK_STATES, "The state of the newest WAV task"),
    since: str | None = SinceQuery,
    until: str | None = UntilQuery,
) -> dict[str, Any]:
    query = listing.parse(
        "tracks",
        limit=limit,
        cursor=cursor,
        q=q,
        status=status,
        statuses=history.TRACK_STATES,
        since=since,
        until=until,
    )
    found = await ctx.db.run_in_thread(history.track_page, ctx, who.account_id, query)
    return SUNO.success(admin.page(found, admin.track_listing))


@router.get(
    "/wav-tasks/search",
    summary="The account's WAV tasks, paged by cursor, searched and filtered, with a total",
    **route(SUNO, admin.WavTaskPage, AUTHENTICATED),
)
async def search_wav_tasks(
    ctx: ContextDep,
    who: PrincipalDep,
    limit: int | None = PageLimit,
    cursor: str | None = CursorQuery,
    q: str | None = SearchQuery,
    status: str | None = _status(history.TASK_STATES, "The task's state"),
    since: str | None = SinceQuery,
    until: str | None = UntilQuery,
    output: str | None = OutputQuery,
) -> dict[str, Any]:
    query = listing.parse(
        "wav-tasks",
        limit=limit,
        cursor=cursor,
        q=q,
        status=status,
        statuses=history.TASK_STATES,
        since=since,
        until=until,
        output=output,
    )
    found = await ctx.db.run_in_thread(history.wav_task_page, ctx, who.account_id, query)
    return SUNO.success(admin.page(found, admin.wav_listing))


@router.get(
    "/ledger/search",
    summary="The caller's ledger entries, paged by cursor and filtered, with a total",
    **route(SUNO, admin.LedgerPage, AUTHENTICATED),
)
async def search_ledger(
    ctx: ContextDep,
    who: PrincipalDep,
    limit: int | None = PageLimit,
    cursor: str | None = CursorQuery,
    q: str | None = Query(
        None,
        max_length=listing.MAX_SEARCH,
        description="The start of a task id, or part of the note.",
    ),
    reason: str | None = _status(ledger.REASONS, "Why the credits moved"),
    since: str | None = SinceQuery,
    until: str | None = UntilQuery,
) -> dict[str, Any]:
    query = listing.parse(
        "ledger",
        limit=limit,
        cursor=cursor,
        q=q,
        status=reason,
        statuses=ledger.REASONS,
        since=since,
        until=until,
    )
    found = await ctx.db.run_in_thread(ledger.entry_page, ctx.db, who.account_id, query)
    return SUNO.success(admin.page(found, admin.ledger_line))


ARCHIVE_ERRORS = (*LOOKUP, Gone)
ZIP_ANSWER: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The ZIP archive (entries STORED), with a Content-Length.",
        "content": {"application/zip": BINARY},
    }
}


@router.post(
    "/wav-tasks/archive",
    summary=f"Several WAVs as one ZIP archive (at most {archive.MAX_MEMBERS}), streamed",
    response_class=Response,
    responses=ZIP_ANSWER | responses(SUNO, ARCHIVE_ERRORS),
    openapi_extra=BEARER,
)
async def download_archive(
    body: admin.ArchiveRequest, ctx: ContextDep, who: PrincipalDep
) -> Response:
    found = await ctx.db.run_in_thread(archive.prepare, ctx, who.account_id, body.taskIds)
    return archive_response(ctx, found)


@router.post(
    "/wav-tasks/archive-link",
    summary="A signed, expiring link to the ZIP archive of several WAVs",
    **route(SUNO, admin.ArchiveLinkShape, ARCHIVE_ERRORS),
)
async def archive_link(
    body: admin.ArchiveRequest, ctx: ContextDep, who: PrincipalDep
) -> dict[str, Any]:
    made = await ctx.db.run_in_thread(archive.link, ctx, who.account_id, body.taskIds)
    return SUNO.success(admin.archive_link(made))
