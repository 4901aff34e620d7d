"""Accepting WAV conversions, whichever dialect asks: the rules live here once.

- at least one of task id / audio id; both must belong together;
- one live WAV record per track, enforced by a unique index so racing requests cannot both win;
- the conversion's credits are taken in the transaction that accepts it, and the account's
  unfinished tasks are counted in it too (the charge's row lock keeps that count honest);
- a succeeded record whose file has expired no longer holds its track: it may be converted again.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from wavforge.audio.options import OutputOptions
from wavforge.core import clock, ids, ledger
from wavforge.core.context import Context
from wavforge.core.records import WavRecord, wav_record
from wavforge.core.states import UNFINISHED, Dialect, WavStatus
from wavforge.db.models import Track, WavTask
from wavforge.errors import Conflict, InvalidRequest, NotFound, QuotaExceeded, TooLarge
from wavforge.outbound.urls import check_url

log = logging.getLogger(__name__)

MAX_ID_LENGTH = 128


FIELDS = ("task_id", "audio_id", "bit_depth", "sample_format", "sample_rate")


@dataclass(frozen=True)
class WavRequest:
    dialect: Dialect
    task_id: str | None = None
    audio_id: str | None = None
    callback_url: str | None = None
    # Output options (CONTRACT §9) as sent, keyed bit_depth/sample_format/sample_rate.
    options: Mapping[str, object] = field(default_factory=dict)
    # How the dialect spells each field, so messages name what the client sent.
    names: Mapping[str, str] = field(default_factory=lambda: {f: f for f in FIELDS})


def submit(ctx: Context, account_id: str, request: WavRequest) -> WavRecord:
    """Accept a conversion and wake a worker; the row is written before the queue is told."""
    output = _validate(ctx, request)
    with ctx.db.read() as session:
        track = _resolve_track(session, account_id, request)
    try:
        record = _accept(ctx, account_id, track, request, output)
    except IntegrityError:
        raise Conflict(data=_live_task_id(ctx, track.id)) from None
    try:
        ctx.dispatch.convert(record.id)
    except Exception:
        log.exception("could not enqueue task %s; the sweep will", record.id)
    return record


def _validate(ctx: Context, request: WavRequest) -> OutputOptions:
    """Every check that needs no database; returns the parsed output options."""
    try:
        output = OutputOptions.parse(request.options, request.names)
    except ValueError as error:
        raise InvalidRequest(str(error)) from None
    task, audio = request.names["task_id"], request.names["audio_id"]
    for name, value in ((task, request.task_id), (audio, request.audio_id)):
        if value is not None and len(value) > MAX_ID_LENGTH:
            raise TooLarge(f"{name} is longer than {MAX_ID_LENGTH} characters")
    if not request.task_id and not request.audio_id:
        raise InvalidRequest(f"{task} or {audio} is required")
    if request.callback_url is not None:
        check_url(
            request.callback_url,
            what="callback URL",
            allow_private=ctx.settings.callback_allow_private,
        )
    return output


def _resolve_track(session: Session, account_id: str, request: WavRequest) -> Track:
    query = select(Track).where(Track.account_id == account_id)
    if request.audio_id:
        query = query.where(Track.id == request.audio_id)
    if request.task_id:
        query = query.where(Track.music_task_id == request.task_id)
    track = session.scalars(query.order_by(Track.position).limit(1)).first()
    if track is not None:
        return track
    if request.audio_id and request.task_id and _exists(session, account_id, request):
        names = request.names
        raise InvalidRequest(f"{names['audio_id']} does not belong to {names['task_id']}")
    raise NotFound("no such track for this account")


def _exists(session: Session, account_id: str, request: WavRequest) -> bool:
    """Both ids exist on their own, so the request's fault is pairing them."""
    owned = (Track.account_id == account_id,)
    by_audio = session.scalar(select(Track.id).where(Track.id == request.audio_id, *owned))
    by_task = session.scalar(
        select(Track.id).where(Track.music_task_id == request.task_id, *owned).limit(1)
    )
    return by_audio is not None and by_task is not None


def _accept(
    ctx: Context, account_id: str, track: Track, request: WavRequest, output: OutputOptions
) -> WavRecord:
    cost = ctx.settings.wav_cost
    with ctx.db.write() as session:
        _release_if_expired(session, track.id)
        live = _live_in(session, track.id)
        if live is not None:
            raise Conflict(data=live)
        task = _new_task(account_id, track, request, output, cost)
        ledger.charge(session, account_id, task.id, cost)
        _check_quota(session, account_id, ctx.settings.max_unfinished)
        session.add(task)
        session.flush()
        return wav_record(task, track, ctx.links)


def _check_quota(session: Session, account_id: str, limit: int) -> None:
    unfinished = session.scalar(
        select(func.count())
        .select_from(WavTask)
        .where(WavTask.account_id == account_id, WavTask.status.in_(UNFINISHED))
    )
    if (unfinished or 0) >= limit:
        raise QuotaExceeded(
            f"too many unfinished tasks: at most {limit} may be pending or running at once"
        )


def _release_if_expired(session: Session, track_id: str) -> None:
    """Free the track from a record whose WAV has expired, even before the purge has run."""
    session.execute(
        update(WavTask)
        .where(WavTask.live_track_id == track_id, WavTask.expires_at <= clock.now())
        .values(live_track_id=None)
    )


def _new_task(
    account_id: str, track: Track, request: WavRequest, output: OutputOptions, cost: int
) -> WavTask:
    now = clock.now()
    return WavTask(
        id=ids.task_id(),
        account_id=account_id,
        track_id=track.id,
        live_track_id=track.id,
        dialect=request.dialect.value,
        callback_url=request.callback_url,
        options=output.as_dict(),
        status=WavStatus.PENDING.value,
        progress=0.0,
        credits_charged=cost,
        attempts=0,
        dispatched_at=now,
        created_at=now,
    )


def _live_in(session: Session, track_id: str) -> str | None:
    return session.scalar(select(WavTask.id).where(WavTask.live_track_id == track_id))


def _live_task_id(ctx: Context, track_id: str) -> str | None:
    with ctx.db.read() as session:
        return _live_in(session, track_id)


def get_wav(ctx: Context, account_id: str, task_id: str) -> WavRecord:
    with ctx.db.read() as session:
        found = session.execute(
            select(WavTask, Track)
            .join(Track, Track.id == WavTask.track_id)
            .where(WavTask.id == task_id, WavTask.account_id == account_id)
        ).first()
    if found is None:
        raise NotFound(f"no WAV task {task_id!r}")
    task, track = found
    return wav_record(task, track, ctx.links)
