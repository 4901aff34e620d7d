"""Which conversion a free slot takes: fair shares between accounts, on any queue.

A queue message only wakes a worker; the table decides what it runs. A slot that frees up
goes to the account with the fewest conversions running; among those, to the one served
longest ago (round robin: an account whose task just started waits behind every account
that has waited since); within the account, to its oldest pending task. So one account that
submits its whole quota at once delays another account's single task by at most one
conversion per slot, and the rule is the same on SQLite and on Redis, since it lives in the
database. A task whose worker died (its lease ran out) is taken back first: it has waited
longest of all.

The same rule shares out a source's peaks jobs (``core.source_peaks``), whose table has the
same claim columns: one account importing a thousand files delays another's peaks by at most
one measurement per slot.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from wavforge.core.leases import Claimable, claim, claim_expired
from wavforge.core.states import WavStatus
from wavforge.db.models import WavTask

CANDIDATES = 3  # accounts tried in order when racing workers win the first ones
_NEVER = datetime(1970, 1, 1)


def claim_next(
    session: Session,
    woken_for: str,
    owner: str,
    lease_seconds: float,
    table: Claimable = WavTask,
) -> str | None:
    """Claim the row of ``table`` a free slot should run now; None when there is none."""
    if claim_expired(session, woken_for, owner, lease_seconds, table):
        return woken_for
    for row_id in _fair_order(session, table):
        if claim(session, row_id, owner, lease_seconds, table):
            return row_id
    return woken_for if claim(session, woken_for, owner, lease_seconds, table) else None


def _fair_order(session: Session, table: Claimable) -> list[str]:
    """Each waiting account's oldest pending row, the accounts in fair order."""
    waiting = dict(
        session.execute(
            select(table.account_id, func.min(table.created_at))
            .where(table.status == WavStatus.PENDING)
            .group_by(table.account_id)
        ).all()
    )
    if not waiting:
        return []
    running = _per_account(session, table, func.count(), table.status == WavStatus.RUNNING)
    served = _per_account(
        session,
        table,
        func.max(table.started_at),
        table.account_id.in_(waiting),
        table.started_at.is_not(None),
    )
    accounts = sorted(
        waiting,
        key=lambda a: (running.get(a, 0), served.get(a) or _NEVER, waiting[a]),
    )
    return [_oldest_pending(session, table, account) for account in accounts[:CANDIDATES]]


def _per_account(
    session: Session, table: Claimable, value: ColumnElement[Any], *where: ColumnElement[bool]
) -> dict[str, Any]:
    query = select(table.account_id, value).where(*where).group_by(table.account_id)
    return {account: found for account, found in session.execute(query).all()}


def _oldest_pending(session: Session, table: Claimable, account_id: str) -> str:
    query = (
        select(table.id)
        .where(table.account_id == account_id, table.status == WavStatus.PENDING)
        .order_by(table.created_at, table.id)
        .limit(1)
    )
    return str(session.scalar(query))
