"""Deleting tracks: their source and every WAV made from them go; the records stay, marked.

A deletion is two steps, like retention's. First one transaction marks the track deleted and
frees it (from then on its links answer 410, a conversion of it 404, and its WAV records say
why their file is gone). Then :func:`erase` deletes the files, each before its record forgets
the key, so a deletion cut short anywhere is finished by the next purge, which erases every
deleted track that still names a file. The ledger is never touched: what was charged for a
conversion that ran stays charged.

A track with a conversion still running cannot be deleted (409): the conversion would store a
WAV after the files were erased.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, select, update
from sqlalchemy.orm import Session

from wavforge.core import clock, peaks, source_peaks
from wavforge.core.context import Context
from wavforge.core.states import UNFINISHED
from wavforge.db.models import Track, WavTask
from wavforge.errors import Conflict, NotFound
from wavforge.storage import StorageError

log = logging.getLogger(__name__)
ERASED = ""  # the source_key of a track whose source file is gone


@dataclass(frozen=True)
class Deleted:
    track_ids: list[str]
    wav_task_ids: list[str]


def delete_track(ctx: Context, account_id: str, track_id: str) -> Deleted:
    """Delete one of the account's tracks (404 if it has none such, 409 while converting)."""
    query = select(Track.id).where(
        Track.id == track_id, Track.account_id == account_id, Track.deleted_at.is_(None)
    )
    deleted = _mark(ctx, query)
    if not deleted.track_ids:
        raise NotFound(f"no track {track_id!r}")
    erase(ctx, deleted.track_ids)
    return deleted


def delete_account_data(ctx: Context, account_id: str) -> Deleted:
    """Delete every track of an account (409 while any of them converts)."""
    query = select(Track.id).where(Track.account_id == account_id, Track.deleted_at.is_(None))
    deleted = _mark(ctx, query)
    erase(ctx, deleted.track_ids)
    return deleted


def expire_sources(ctx: Context, older_than: datetime) -> Deleted:
    """Delete tracks imported before ``older_than`` (``WAVFORGE_SOURCE_RETENTION_SECONDS``),
    leaving any with a conversion running for a later purge."""
    busy = select(WavTask.track_id).where(WavTask.status.in_(UNFINISHED))
    query = select(Track.id).where(
        Track.created_at < older_than, Track.deleted_at.is_(None), Track.id.not_in(busy)
    )
    deleted = _mark(ctx, query)
    erase(ctx, deleted.track_ids)
    return deleted


def _mark(ctx: Context, tracks: Select[str]) -> Deleted:
    now = clock.now()
    with ctx.db.write() as session:
        track_ids = list(session.scalars(tracks))
        if not track_ids:
            return Deleted([], [])
        _refuse_if_converting(session, track_ids)
        session.execute(update(Track).where(Track.id.in_(track_ids)).values(deleted_at=now))
        # Free the tracks' live records: nothing holds a deleted track any more.
        session.execute(
            update(WavTask).where(WavTask.track_id.in_(track_ids)).values(live_track_id=None)
        )
        source_peaks.cancel(session, track_ids)
        task_ids = list(session.scalars(select(WavTask.id).where(WavTask.track_id.in_(track_ids))))
    return Deleted(track_ids, task_ids)


def _refuse_if_converting(session: Session, track_ids: list[str]) -> None:
    running = session.scalar(
        select(WavTask.id)
        .where(WavTask.track_id.in_(track_ids), WavTask.status.in_(UNFINISHED))
        .limit(1)
    )
    if running is not None:
        raise Conflict(
            "a conversion of this track has not finished; delete it once it has", data=running
        )


def erase(ctx: Context, track_ids: list[str]) -> int:
    """Delete the files of deleted tracks, each before its record forgets it; returns how
    many files went. A file that cannot be deleted now is left for the next purge."""
    erased = 0
    for track_id in track_ids:
        try:
            erased += _erase_track(ctx, track_id)
        except StorageError as error:
            log.warning("track %s: files not all deleted (%s); the purge retries", track_id, error)
    return erased


def _erase_track(ctx: Context, track_id: str) -> int:
    erased = 0
    with ctx.db.read() as session:
        wavs = session.execute(
            select(WavTask.id, WavTask.wav_key).where(
                WavTask.track_id == track_id, WavTask.wav_key.is_not(None)
            )
        ).all()
        source_key = session.scalar(select(Track.source_key).where(Track.id == track_id))
    for task_id, key in wavs:
        peaks.delete_wav(ctx, str(key))
        with ctx.db.write() as session:
            session.execute(update(WavTask).where(WavTask.id == task_id).values(wav_key=None))
        erased += 1
    if source_key:
        peaks.delete_source(ctx, source_key)  # the source with its peaks
        with ctx.db.write() as session:
            session.execute(update(Track).where(Track.id == track_id).values(source_key=ERASED))
        erased += 1
    return erased


def unfinished_erasures(ctx: Context) -> list[str]:
    """Deleted tracks that still name a file: a deletion or purge was cut short."""
    with ctx.db.read() as session:
        with_wav = select(WavTask.track_id).where(WavTask.wav_key.is_not(None))
        query = select(Track.id).where(
            Track.deleted_at.is_not(None),
            (Track.source_key != ERASED) | Track.id.in_(with_wav),
        )
        return list(session.scalars(query))
