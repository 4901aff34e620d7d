"""Which conversion a free slot takes: fair shares between accounts, on any queue.

A queue message only wakes a worker; the table decides what it runs. A slot that frees up
goes to the account with the fewest conversions running; among those, to the one served
longest ago (round robin: an account whose task just started waits behind every account
that has waited since); within the account, to its oldest pending task. So one account that
submits its whole quota at once delays another account's single task by at most one
conversion per slot, and the rule is the same on SQLite and on Redis, since it lives in the
database. A task whose worker died (its lease ran out) is taken back first: it has waited
longest of all.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from wavforge.core.leases import claim_expired, claim_wav
from wavforge.core.states import WavStatus
from wavforge.db.models import WavTask

CANDIDATES = 3  # accounts tried in order when racing workers win the first ones
_NEVER = datetime(1970, 1, 1)


def claim_next(session: Session, woken_for: str, owner: str, lease_seconds: float) -> str | None:
    """Claim the task a free slot should run now; None when there is none."""
    if claim_expired(session, woken_for, owner, lease_seconds):
        return woken_for
    for task_id in _fair_order(session):
        if claim_wav(session, task_id, owner, lease_seconds):
            return task_id
    return woken_for if claim_wav(session, woken_for, owner, lease_seconds) else None


def _fair_order(session: Session) -> list[str]:
    """Each waiting account's oldest pending task, the accounts in fair order."""
    waiting = dict(
        session.execute(
            select(WavTask.account_id, func.min(WavTask.created_at))
            .where(WavTask.status == WavStatus.PENDING)
            .group_by(WavTask.account_id)
        ).all()
    )
    if not waiting:
        return []
    running = _per_account(session, func.count(), WavTask.status == WavStatus.RUNNING)
    served = _per_account(
        session,
        func.max(WavTask.started_at),
        WavTask.account_id.in_(waiting),
        WavTask.started_at.is_not(None),
    )
    accounts = sorted(
        waiting,
        key=lambda a: (running.get(a, 0), served.get(a) or _NEVER, waiting[a]),
    )
    return [_oldest_pending(session, account) for account in accounts[:CANDIDATES]]


def _per_account(
    session: Session, value: ColumnElement[Any], *where: ColumnElement[bool]
) -> dict[str, Any]:
    query = select(WavTask.account_id, value).where(*where).group_by(WavTask.account_id)
    return {account: found for account, found in session.execute(query).all()}


def _oldest_pending(session: Session, account_id: str) -> str:
    query = (
        select(WavTask.id)
        .where(WavTask.account_id == account_id, WavTask.status == WavStatus.PENDING)
        .order_by(WavTask.created_at, WavTask.id)
        .limit(1)
    )
    return str(session.scalar(query))
