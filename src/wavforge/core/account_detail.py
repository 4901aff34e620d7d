"""One account in detail, for operators: the account, its keys and what it has used.

Every usage figure is counted from the rows that record the event, so it is exact and costs
one query per table, each on the account's index:

- imports: music tasks (one per import request, made only when every file was accepted);
- tracks: every track imported, deleted ones included (they were imported all the same);
- WAV tasks: by their state now;
- credits spent: the ledger's charges less its refunds (grants are not spending);
- audio converted: the seconds each conversion that made its WAV measured and stored in its
  analysis (kept after the file expires; a conversion without one adds nothing).

The recent window counts the rows *created* within it — a task by when it was asked for, a
refund by when it was made — so both columns come from the same rows with one notion of time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from wavforge.core import accounts, clock
from wavforge.core.accounts import AccountInfo, KeyInfo
from wavforge.core.states import WITH_FILE, WavStatus
from wavforge.db.database import Database
from wavforge.db.models import LedgerEntry, MusicTask, Track, WavTask

RECENT_DAYS = 30

_Created = ColumnElement[datetime] | InstrumentedAttribute[datetime]


@dataclass(frozen=True)
class Totals:
    """What an account used over one span of time."""

    imports: int
    tracks: int
    wav_tasks: dict[WavStatus, int]  # every state, 0 where none
    credits_spent: int  # charges less refunds
    seconds_converted: float


@dataclass(frozen=True)
class AccountDetail:
    account: AccountInfo
    keys: list[KeyInfo]  # revoked ones included, oldest first
    since: datetime  # the start of the recent window
    all_time: Totals
    recent: Totals


def detail(db: Database, account_id: str, days: int = RECENT_DAYS) -> AccountDetail:
    """The account (404 if unknown), its keys, and its usage ever and over the last ``days``."""
    account = accounts.get_account(db, account_id)
    since = clock.now() - timedelta(days=days)
    with db.read() as session:
        all_time, recent = _usage(session, account_id, since)
    return AccountDetail(account, accounts.list_keys(db, account_id), since, all_time, recent)


def _usage(session: Session, account_id: str, since: datetime) -> tuple[Totals, Totals]:
    imports = _counted(session, MusicTask.account_id, MusicTask.created_at, account_id, since)
    tracks = _counted(session, Track.account_id, Track.created_at, account_id, since)
    tasks, seconds = _tasks(session, account_id, since)
    spent = _spent(session, account_id, since)
    totals = [Totals(imports[at], tracks[at], tasks[at], spent[at], seconds[at]) for at in (0, 1)]
    return totals[0], totals[1]


def _recent(created: _Created, since: datetime, value: Any = 1) -> Any:
    """``value`` for a row created at or after ``since``, else 0: a window in an aggregate."""
    return case((created >= since, value), else_=0)


def _counted(
    session: Session,
    owner: InstrumentedAttribute[str],
    created: InstrumentedAttribute[datetime],
    account_id: str,
    since: datetime,
) -> tuple[int, int]:
    """The account's rows of one table, ever and since ``since``."""
    found = session.execute(
        select(func.count(), func.coalesce(func.sum(_recent(created, since)), 0)).where(
            owner == account_id
        )
    ).one()
    return int(found[0]), int(found[1])


def _tasks(
    session: Session, account_id: str, since: datetime
) -> tuple[tuple[dict[WavStatus, int], dict[WavStatus, int]], tuple[float, float]]:
    """WAV tasks by state, and the seconds of audio the finished ones wrote, ever and recent."""
    duration = func.coalesce(WavTask.analysis["duration"].as_float(), 0.0)
    rows = session.execute(
        select(
            WavTask.status,
            func.count(),
            func.sum(_recent(WavTask.created_at, since)),
            func.sum(duration),
            func.sum(_recent(WavTask.created_at, since, duration)),
        )
        .where(WavTask.account_id == account_id)
        .group_by(WavTask.status)
    ).all()
    ever = dict.fromkeys(WavStatus, 0)
    recent = dict.fromkeys(WavStatus, 0)
    seconds = [0.0, 0.0]
    for status, count, recent_count, written, recent_written in rows:
        ever[WavStatus(status)], recent[WavStatus(status)] = int(count), int(recent_count or 0)
        if status in WITH_FILE:
            seconds[0] += float(written or 0)
            seconds[1] += float(recent_written or 0)
    return (ever, recent), (seconds[0], seconds[1])


def _spent(session: Session, account_id: str, since: datetime) -> tuple[int, int]:
    """Credits the account's conversions cost: charges (negative) and refunds, negated."""
    amount = LedgerEntry.amount
    found = session.execute(
        select(
            func.coalesce(func.sum(amount), 0),
            func.coalesce(func.sum(_recent(LedgerEntry.created_at, since, amount)), 0),
        ).where(LedgerEntry.account_id == account_id, LedgerEntry.wav_task_id.is_not(None))
    ).one()
    return -int(found[0]), -int(found[1])
