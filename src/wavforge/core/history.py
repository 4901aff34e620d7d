"""What an account has done, newest first: its tracks, its WAV tasks and a usage summary.

The console's pages and the ``/api/v1/account/...`` listings read these; both see the same
snapshots the dialects render, so a list and a record-info never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, ScalarSelect, Select, and_, func, or_, select
from sqlalchemy.orm import aliased

from wavforge.core.context import Context
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


def _track_query(account_id: str) -> Select[*tuple[Any, ...]]:
    return (
        select(Track, WavTask.id, WavTask.status)
        .outerjoin(WavTask, WavTask.id == _newest_live_task())
        .where(Track.account_id == account_id, Track.deleted_at.is_(None))
    )


def _newest_live_task() -> ScalarSelect[str]:
    """Joining every live task would repeat a track once per format it holds."""
    live = aliased(WavTask)
    return (
        select(live.id)
        .where(live.live_track_id == Track.id)
        .order_by(live.created_at.desc(), live.id.desc())
        .limit(1)
        .correlate(Track)
        .scalar_subquery()
    )


def _track_listings(ctx: Context, query: Select[*tuple[Any, ...]]) -> list[TrackListing]:
    expires = source_link_expiry(ctx.settings.retention_seconds)
    with ctx.db.read() as session:
        rows = session.execute(query).all()
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
        )
        for track, task_id, status in rows
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
