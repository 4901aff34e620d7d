"""Accepting WAV conversions, whichever dialect asks: the rules live here once.

- at least one of task id / audio id; both must belong together;
- one live WAV record per track and output format (the format as asked for, see
  ``OutputOptions.key``), enforced by a unique index so racing requests cannot both win;
- the conversion's credits are taken in the transaction that accepts it, and the account's
  unfinished tasks are counted in it too (the charge's row lock keeps that count honest);
- a succeeded record whose file has expired no longer holds its track: it may be converted again.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import Select, bindparam, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from wavforge.audio.options import OutputOptions
from wavforge.core import clock, deliveries, ids, ledger, telemetry
from wavforge.core.context import Context
from wavforge.core.records import TrackRow, WavRecord, wav_record
from wavforge.core.requests import WavRequest
from wavforge.core.states import UNFINISHED, WavStatus
from wavforge.db.models import Track, WavTask, column_values, table_of
from wavforge.db.rows import Rows
from wavforge.errors import Conflict, InvalidRequest, NotFound, QuotaExceeded, TooLarge

log = logging.getLogger(__name__)

MAX_ID_LENGTH = 128


# Submissions and status polls are most of the API's traffic. Their statements are built once
# (building one costs more than running it on SQLite) and run on plain rows, without the ORM's
# identity map and unit of work.
_TASKS = table_of(WavTask)
_TRACKS = table_of(Track)


def _track_query(by_audio: bool, by_task: bool) -> Select[Any]:
    query = select(_TRACKS).where(
        _TRACKS.c.account_id == bindparam("account_id"),
        _TRACKS.c.deleted_at.is_(None),  # a deleted track answers as one that never was
    )
    if by_audio:
        query = query.where(_TRACKS.c.id == bindparam("audio_id"))
    if by_task:
        query = query.where(_TRACKS.c.music_task_id == bindparam("task_id"))
    return query.order_by(_TRACKS.c.position).limit(1)


_TRACK_BY = {(a, t): _track_query(a, t) for a in (True, False) for t in (True, False) if a or t}
_LIVE_ON_TRACK = select(_TASKS.c.id, _TASKS.c.expires_at).where(
    _TASKS.c.live_track_id == bindparam("track_id"),
    _TASKS.c.format_key == bindparam("format_key"),
)
# The freed column comes with the parameters: on the driver path (see db.rows) a write is
# compiled for the columns it is given, and a value fixed in the statement is not one of them.
_RELEASE = update(_TASKS).where(_TASKS.c.id == bindparam("task"))
# Counting stops at the limit: the quota only needs to know whether it is reached. It reads
# the status, not the id, so that the (account_id, status) index alone answers it.
_UNFINISHED_OF_ACCOUNT = select(func.count()).select_from(
    select(_TASKS.c.status)
    .where(
        _TASKS.c.account_id == bindparam("account_id"),
        # Equalities rather than IN: an IN list is expanded per execution (see db.rows).
        or_(*(_TASKS.c.status == status.value for status in UNFINISHED)),
    )
    .limit(bindparam("limit"))
    .subquery()
)
_INSERT_TASK = insert(_TASKS)
_TASK_OF_ACCOUNT = select(_TASKS).where(
    _TASKS.c.id == bindparam("task_id"), _TASKS.c.account_id == bindparam("account_id")
)
_TRACK = select(_TRACKS).where(_TRACKS.c.id == bindparam("track_id"))


def submit(ctx: Context, account_id: str, request: WavRequest) -> WavRecord:
    """Accept a conversion and wake a worker; the row is written before the queue is told."""
    return accept(ctx, account_id, request, check(ctx, request))


def accept(ctx: Context, account_id: str, request: WavRequest, output: OutputOptions) -> WavRecord:
    """The database half of :func:`submit`, once :func:`check` has passed."""
    track = _resolve_track(ctx, account_id, request)
    try:
        record = _write(ctx, account_id, track, request, output)
    except IntegrityError:  # a racing submission took the track in this format first
        raise Conflict(data=_live_task_id(ctx, track.id, output.key())) from None
    try:
        ctx.dispatch.convert(record.id)
    except Exception:
        log.exception("could not enqueue task %s; the sweep will", record.id)
    return record


def check(ctx: Context, request: WavRequest) -> OutputOptions:
    """Every check that needs no database; returns the parsed output options.

    Checking a callback URL with a host name asks DNS, which may take a while: callers
    that must not block (an event loop) run this part in a thread (see ``needs_dns``).
    """
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
        deliveries.check_callback_url(ctx, request.callback_url)
    return output


def _resolve_track(ctx: Context, account_id: str, request: WavRequest) -> TrackRow:
    query = _TRACK_BY[(request.audio_id is not None, request.task_id is not None)]
    params = {"account_id": account_id, "audio_id": request.audio_id, "task_id": request.task_id}
    with ctx.db.read_rows() as rows:
        track = rows.first(query, params)
    if track is not None:
        return track
    if request.audio_id and request.task_id:
        with ctx.db.read() as session:
            if _exists(session, account_id, request):
                names = request.names
                raise InvalidRequest(f"{names['audio_id']} does not belong to {names['task_id']}")
    raise NotFound("no such track for this account")


def _exists(session: Session, account_id: str, request: WavRequest) -> bool:
    """Both ids exist on their own, so the request's fault is pairing them."""
    owned = (Track.account_id == account_id, Track.deleted_at.is_(None))
    by_audio = session.scalar(select(Track.id).where(Track.id == request.audio_id, *owned))
    by_task = session.scalar(
        select(Track.id).where(Track.music_task_id == request.task_id, *owned).limit(1)
    )
    return by_audio is not None and by_task is not None


def _write(
    ctx: Context, account_id: str, track: TrackRow, request: WavRequest, output: OutputOptions
) -> WavRecord:
    cost = ctx.settings.wav_cost
    task = _new_task(account_id, track, request, output, cost)
    charge = ledger.Charge(account_id, task.id, cost)
    values = column_values(task)  # built before this writer's turn, which should be short
    with ctx.db.write_rows() as rows:
        _claim_track(rows, track.id, task.format_key)
        charge.take(rows)
        _check_quota(rows, account_id, ctx.settings.max_unfinished)
        rows.run(_INSERT_TASK, values)
    telemetry.events().credits_charged(cost)  # committed: the credits moved
    return wav_record(task, track, ctx.links)


def _claim_track(rows: Rows, track_id: str, format_key: str) -> None:
    """Refuse a track that has a live record in this format; free it from one whose WAV has
    expired. Other formats of the track are no concern of this request.

    The release happens even before the purge has run. The unique index on
    ``(live_track_id, format_key)`` still decides between racing submissions.
    """
    live = rows.first(_LIVE_ON_TRACK, {"track_id": track_id, "format_key": format_key})
    if live is None:
        return
    if live.expires_at is None or live.expires_at > clock.now():
        raise Conflict(data=live.id)
    rows.run(_RELEASE, {"task": live.id, "live_track_id": None})


def _check_quota(rows: Rows, account_id: str, limit: int) -> None:
    unfinished = rows.scalar(_UNFINISHED_OF_ACCOUNT, {"account_id": account_id, "limit": limit})
    if (unfinished or 0) >= limit:
        raise QuotaExceeded(
            f"too many unfinished tasks: at most {limit} may be pending or running at once"
        )


def _new_task(
    account_id: str, track: TrackRow, request: WavRequest, output: OutputOptions, cost: int
) -> WavTask:
    now = clock.now()
    return WavTask(
        id=ids.task_id(),
        account_id=account_id,
        track_id=track.id,
        live_track_id=track.id,
        format_key=output.key(),
        dialect=request.dialect,
        callback_url=request.callback_url,
        options=output.as_dict(),
        status=WavStatus.PENDING.value,
        progress=0.0,
        credits_charged=cost,
        attempts=0,
        dispatched_at=now,
        created_at=now,
    )


def _live_task_id(ctx: Context, track_id: str, format_key: str) -> str | None:
    with ctx.db.read_rows() as rows:
        found = rows.scalar(_LIVE_ON_TRACK, {"track_id": track_id, "format_key": format_key})
    return None if found is None else str(found)


def get_wav(ctx: Context, account_id: str, task_id: str) -> WavRecord:
    with ctx.db.read_rows() as rows:
        found = rows.first(_TASK_OF_ACCOUNT, {"task_id": task_id, "account_id": account_id})
        if found is None:
            raise NotFound(f"no WAV task {task_id!r}")
        track = rows.first(_TRACK, {"track_id": found.track_id})
        assert track is not None, "a task's track outlives it (foreign key)"
    return wav_record(found, track, ctx.links)
