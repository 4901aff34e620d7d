"""What an account has done, newest first: its tracks, its WAV tasks and a usage summary.

The console's pages and the ``/api/v1/account/...`` listings read these; both see the same
snapshots the dialects render, so a list and a record-info never disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    ScalarSelect,
    Select,
    and_,
    exists,
    func,
    or_,
    select,
)
from sqlalchemy.orm import aliased

from wavforge.core import listing
from wavforge.core.context import Context
from wavforge.core.listing import Page
from wavforge.core.records import TrackRecord, WavRecord, source_link_expiry, track_record
from wavforge.core.records import wav_record as to_wav_record
from wavforge.core.states import WavStatus
from wavforge.db.models import LedgerEntry, Track, WavTask
from wavforge.errors import NotFound

MAX_LISTED = 200

ListedTable = type[Track] | type[WavTask]
_NOUNS: dict[ListedTable, str] = {Track: "track", WavTask: "WAV task"}


@dataclass(frozen=True)
class TrackListing:
    """A track with what a person picks it by, and its newest live WAV task, if any (a track
    holds one per output format; a listing shows a track once)."""

    track: TrackRecord
    source_name: str
    source_format: str
    sample_rate: int
    channels: int
    wav_task_id: str | None
    wav_status: WavStatus | None
    source_sha256: str | None = None
    latest: LatestTask | None = None  # the newest task of the track, live or not


@dataclass(frozen=True)
class LatestTask:
    """A track's newest conversion in any state: a failure shows on its row with a retry."""

    id: str
    status: WavStatus
    progress: float
    error_message: str | None


@dataclass(frozen=True)
class Usage:
    tracks: int
    wav_tasks: dict[WavStatus, int]
    credits_spent: int  # charges less refunds, over the ledger's whole life


def tracks(
    ctx: Context,
    account_id: str,
    limit: int = 50,
    before: str | None = None,
    sha256: str | None = None,
) -> list[TrackListing]:
    """The account's newest tracks; ``before`` (a track id) pages back through older ones;
    ``sha256`` keeps only those imported from a file with that SHA-256."""
    found = _track_query(account_id)
    if sha256 is not None:
        found = found.where(Track.source_sha256 == sha256)
    query = _paged(ctx, found, Track, account_id, limit, before)
    return _track_listings(ctx, query)


def track(ctx: Context, account_id: str, track_id: str) -> TrackListing:
    found = _track_listings(ctx, _track_query(account_id).where(Track.id == track_id))
    if not found:
        raise NotFound(f"no track {track_id!r}")
    return found[0]


# Any select: a listing is a track with its newest task, or a task with its track.
_Query = TypeVar("_Query", bound="Select[*tuple[Any, ...]]")


_LATEST = aliased(WavTask, name="latest")
_ANY_TASK = aliased(WavTask, name="any_task")  # the page query joins WavTask itself


def _track_query(account_id: str) -> Select[*tuple[Any, ...]]:
    return (
        select(
            Track,
            WavTask.id,
            WavTask.status,
            _LATEST.id,
            _LATEST.status,
            _LATEST.progress,
            _LATEST.error_message,
        )
        .select_from(Track)
        .outerjoin(WavTask, WavTask.id == _newest_task(live=True))
        .outerjoin(_LATEST, _LATEST.id == _newest_task(live=False))
        .where(Track.account_id == account_id, Track.deleted_at.is_(None))
    )


def _newest_task(live: bool, column: str = "id") -> ScalarSelect[str]:
    """A column of the track's newest (live) task; joining every task would repeat a track
    once per task (format) it holds."""
    task = aliased(WavTask)
    on_track = task.live_track_id == Track.id if live else task.track_id == Track.id
    return (
        select(getattr(task, column))
        .where(on_track)
        .order_by(task.created_at.desc(), task.id.desc())
        .limit(1)
        .correlate(Track)
        .scalar_subquery()
    )


def _track_listings(ctx: Context, query: Select[*tuple[Any, ...]]) -> list[TrackListing]:
    with ctx.db.read() as session:
        rows = [tuple(row) for row in session.execute(query)]
    return _listings(ctx, rows)


def _listings(ctx: Context, rows: Sequence[tuple[Any, ...]]) -> list[TrackListing]:
    expires = source_link_expiry(ctx.settings.retention_seconds)
    return [
        TrackListing(
            track=track_record(track, ctx.links, expires),
            source_name=track.source_name,
            source_format=track.source_format,
            sample_rate=track.sample_rate,
            channels=track.channels,
            wav_task_id=task_id,
            wav_status=WavStatus(status) if status else None,
            source_sha256=track.source_sha256,
            latest=LatestTask(latest_id, WavStatus(latest_status), progress, error)
            if latest_id
            else None,
        )
        for track, task_id, status, latest_id, latest_status, progress, error in rows
    ]


def wav_tasks(
    ctx: Context, account_id: str, limit: int = 50, before: str | None = None
) -> list[WavRecord]:
    """The account's newest WAV tasks, each as its record-info would show it; ``before`` (a
    WAV task id) pages back."""
    query = (
        select(WavTask, Track)
        .join(Track, Track.id == WavTask.track_id)
        .where(WavTask.account_id == account_id)
    )
    query = _paged(ctx, query, WavTask, account_id, limit, before)
    with ctx.db.read() as session:
        rows = session.execute(query).all()
    return [to_wav_record(task, track, ctx.links) for task, track in rows]


def _paged(
    ctx: Context,
    query: _Query,
    table: ListedTable,
    account_id: str,
    limit: int,
    before: str | None,
) -> _Query:
    """Newest first, paged by keyset: ``before`` is the last row already seen, not a time,
    because many rows share a ``created_at`` (every track of one import) and a time would
    skip them. The id breaks ties, so the order is total and each row comes exactly once."""
    if before is not None:
        query = query.where(_after(ctx, table, account_id, before))
    order = (table.created_at.desc(), table.id.desc())
    return query.order_by(*order).limit(min(limit, MAX_LISTED))


def _after(ctx: Context, table: ListedTable, account_id: str, row_id: str) -> ColumnElement[bool]:
    """The rows that come after ``row_id`` in the listing order. The cursor is looked up
    within the account, so another account's id is unknown here, as in every other lookup."""
    with ctx.db.read() as session:
        created = session.scalar(
            select(table.created_at).where(table.id == row_id, table.account_id == account_id)
        )
    if created is None:
        raise NotFound(f"no {_NOUNS[table]} {row_id!r} to page from")
    same_time_older_id = and_(table.created_at == created, table.id < row_id)
    return or_(table.created_at < created, same_time_older_id)


# --- paged, searched and filtered (see wavforge.core.listing) ------------------------------

TRACK_STATES = frozenset([*(status.value for status in WavStatus), "NONE"])
TASK_STATES = frozenset(status.value for status in WavStatus)


def track_page(ctx: Context, account_id: str, query: listing.Query) -> Page[TrackListing]:
    """The account's tracks matching ``query``: ``search`` is part of the title or the start of
    the track id; ``status`` the state of the track's newest task (``NONE``: never converted)."""
    where = [Track.account_id == account_id, Track.deleted_at.is_(None), *_dated(Track, query)]
    if query.search is not None:
        where.append(
            or_(
                Track.title.icontains(query.search, autoescape=True),
                Track.id.startswith(query.search, autoescape=True),
            )
        )
    if query.status == "NONE":
        where.append(~exists().where(_ANY_TASK.track_id == Track.id).correlate(Track))
    elif query.status is not None:
        where.append(_newest_task(live=False, column="status") == query.status)
    counted = select(func.count()).select_from(Track).where(*where)
    page = _keyset(ctx, "tracks", _track_query(account_id).where(*where), counted, Track, query)
    return page.showing(_listings(ctx, page.items))


def wav_task_page(ctx: Context, account_id: str, query: listing.Query) -> Page[WavRecord]:
    """The account's WAV tasks matching ``query``: ``search`` is part of the track's title or
    the start of the task's or the track's id; ``output`` one of ``listing.OUTPUTS``."""
    where = [WavTask.account_id == account_id, *_dated(WavTask, query)]
    if query.search is not None:
        where.append(
            or_(
                Track.title.icontains(query.search, autoescape=True),
                WavTask.id.startswith(query.search, autoescape=True),
                WavTask.track_id.startswith(query.search, autoescape=True),
            )
        )
    if query.status is not None:
        where.append(WavTask.status == query.status)
    if query.output is not None:
        where.append(WavTask.format_key == listing.output_key(query.output))
    counted = select(func.count()).select_from(WavTask).where(*where)
    if query.search is not None:  # the only filter that reads the track
        counted = counted.join(Track, Track.id == WavTask.track_id)
    found = select(WavTask, Track).join(Track, Track.id == WavTask.track_id).where(*where)
    page = _keyset(ctx, "wav-tasks", found, counted, WavTask, query)
    items = [to_wav_record(task, track, ctx.links) for task, track in page.items]
    return page.showing(items)


def _dated(table: ListedTable, query: listing.Query) -> list[ColumnElement[bool]]:
    where = []
    if query.since is not None:
        where.append(table.created_at >= query.since)
    if query.until is not None:
        where.append(table.created_at < query.until)
    return where


def _keyset(
    ctx: Context,
    kind: str,
    found: Select[*tuple[Any, ...]],
    counted: Select[int],
    table: ListedTable,
    query: listing.Query,
) -> Page[tuple[Any, ...]]:
    """One page of ``found`` newest first, at ``query.after``, and ``counted``: how many
    match on all pages (the count reads no more tables than the filters need)."""
    found = listing.seek(found, (table.created_at, table.id), query)
    with ctx.db.read() as session:
        total = session.scalar(counted) or 0
        rows = [tuple(row) for row in session.execute(found).all()]
    return listing.cut(kind, rows, query, total, lambda row: (row[0].created_at, row[0].id))


def usage(ctx: Context, account_id: str) -> Usage:
    with ctx.db.read() as session:
        track_count = session.scalar(
            select(func.count())
            .select_from(Track)
            .where(Track.account_id == account_id, Track.deleted_at.is_(None))
        )
        by_status = session.execute(
            select(WavTask.status, func.count())
            .where(WavTask.account_id == account_id)
            .group_by(WavTask.status)
        ).all()
        spent = session.scalar(
            select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(
                LedgerEntry.account_id == account_id, LedgerEntry.wav_task_id.is_not(None)
            )
        )
    return Usage(
        tracks=track_count or 0,
        wav_tasks={WavStatus(status): count for status, count in by_status},
        credits_spent=-(spent or 0),
    )
