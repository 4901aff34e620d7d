"""What an account has done, newest first: its tracks, its WAV tasks and a usage summary.

The console's pages and the ``/api/v1/account/...`` listings read these; both see the same
snapshots the dialects render, so a list and a record-info never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Select, func, select

from wavforge.core.context import Context
from wavforge.core.records import TrackRecord, WavRecord, source_link_expiry, track_record
from wavforge.core.records import wav_record as to_wav_record
from wavforge.core.states import WavStatus
from wavforge.db.models import LedgerEntry, Track, WavTask
from wavforge.errors import NotFound

MAX_LISTED = 200


@dataclass(frozen=True)
class TrackListing:
    """A track with what a person picks it by, and the WAV task that holds it, if any."""

    track: TrackRecord
    source_name: str
    source_format: str
    sample_rate: int
    channels: int
    wav_task_id: str | None
    wav_status: WavStatus | None


@dataclass(frozen=True)
class Usage:
    tracks: int
    wav_tasks: dict[WavStatus, int]
    credits_spent: int  # charges less refunds, over the ledger's whole life


def tracks(
    ctx: Context, account_id: str, limit: int = 50, before: datetime | None = None
) -> list[TrackListing]:
    """The account's newest tracks, with ``before`` to page back through older ones."""
    query = _track_query(account_id)
    if before is not None:
        query = query.where(Track.created_at < _as_stored(before))
    query = query.order_by(Track.created_at.desc(), Track.position).limit(min(limit, MAX_LISTED))
    return _track_listings(ctx, query)


def track(ctx: Context, account_id: str, track_id: str) -> TrackListing:
    found = _track_listings(ctx, _track_query(account_id).where(Track.id == track_id))
    if not found:
        raise NotFound(f"no track {track_id!r}")
    return found[0]


def _track_query(account_id: str) -> Select:
    return (
        select(Track, WavTask.id, WavTask.status)
        .outerjoin(WavTask, WavTask.live_track_id == Track.id)
        .where(Track.account_id == account_id)
    )


def _track_listings(ctx: Context, query: Select) -> list[TrackListing]:
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
        )
        for track, task_id, status in rows
    ]


def wav_tasks(
    ctx: Context, account_id: str, limit: int = 50, before: datetime | None = None
) -> list[WavRecord]:
    """The account's newest WAV tasks, each as its record-info would show it."""
    query = (
        select(WavTask, Track)
        .join(Track, Track.id == WavTask.track_id)
        .where(WavTask.account_id == account_id)
    )
    if before is not None:
        query = query.where(WavTask.created_at < _as_stored(before))
    query = query.order_by(WavTask.created_at.desc(), WavTask.id).limit(min(limit, MAX_LISTED))
    with ctx.db.read() as session:
        rows = session.execute(query).all()
    return [to_wav_record(task, track, ctx.links) for task, track in rows]


def _as_stored(moment: datetime) -> datetime:
    """Rows hold naive UTC times; a client may send any offset."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


def usage(ctx: Context, account_id: str) -> Usage:
    with ctx.db.read() as session:
        track_count = session.scalar(
            select(func.count()).select_from(Track).where(Track.account_id == account_id)
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
