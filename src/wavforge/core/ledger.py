"""Credits: every change is a ledger row written in the same transaction as the balance.

The balance on the account row is the ledger's running sum, kept for a cheap guarded update:
a charge is one ``UPDATE ... WHERE credits >= cost`` (so racing submissions cannot overdraw),
and a refund inserts its row *before* touching the balance, so the unique constraint on
(task, reason) refuses a second refund before any credit moves. Charges and refunds are
counted for the metrics once their transaction commits: a charge rolled back never counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import bindparam, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from wavforge.core import clock, listing
from wavforge.db.database import Database
from wavforge.db.models import Account, LedgerEntry, column_values, table_of
from wavforge.db.rows import Rows
from wavforge.errors import InsufficientCredits, InvalidRequest, NotFound

MAX_GRANT = 1_000_000_000


class Reason(StrEnum):
    GRANT = "grant"
    CHARGE = "charge"
    REFUND = "refund"


@dataclass(frozen=True)
class Entry:
    amount: int
    reason: str
    wav_task_id: str | None
    note: str
    created_at: datetime
    id: int = 0


class Charge:
    """What a conversion costs, taken in the transaction that accepts it.

    The ledger row is built up front, so the transaction (one writer at a time on SQLite)
    only runs the statements. The caller counts the credits in the metrics once its
    transaction has committed.
    """

    def __init__(self, account_id: str, task_id: str, cost: int) -> None:
        self.account_id, self.cost = account_id, cost
        self._entry = column_values(_entry(account_id, -cost, Reason.CHARGE, task_id))

    def take(self, rows: Rows) -> None:
        """Take the cost, or raise :class:`InsufficientCredits`.

        The update runs even when the conversion is free: it locks the account row, which
        the unfinished-task quota counted after it relies on.
        """
        if not rows.run(_CHARGE, {"account_id": self.account_id, "cost": self.cost}):
            raise InsufficientCredits(f"insufficient credits: a conversion costs {self.cost}")
        if self.cost:
            rows.run(_INSERT_ENTRY, self._entry)


# Every submission charges: its statements are built once and skip the ORM's unit of work.
_ACCOUNTS = table_of(Account)
_CHARGE = (
    update(_ACCOUNTS)
    .where(_ACCOUNTS.c.id == bindparam("account_id"), _ACCOUNTS.c.credits >= bindparam("cost"))
    .values(credits=_ACCOUNTS.c.credits - bindparam("cost"))
)
_INSERT_ENTRY = insert(table_of(LedgerEntry))


def refund(session: Session, account_id: str, task_id: str, amount: int) -> bool:
    """Give back the ``amount`` ``task_id`` was charged, once; False if it was refunded before.

    The caller counts the credits in the metrics once its transaction has committed.
    """
    if amount <= 0:
        return False
    try:
        with session.begin_nested():
            session.add(_entry(account_id, amount, Reason.REFUND, task_id))
    except IntegrityError:
        return False  # an earlier run of this failure refunded it
    session.execute(
        update(Account).where(Account.id == account_id).values(credits=Account.credits + amount)
    )
    return True


def grant(db: Database, account_id: str, amount: int, note: str = "") -> int:
    """Add (or, with a negative amount, take away) credits; returns the new balance."""
    if amount == 0 or abs(amount) > MAX_GRANT:
        raise InvalidRequest(f"amount must be a non-zero integer within ±{MAX_GRANT}")
    with db.write() as session:
        if session.get(Account, account_id) is None:
            raise NotFound(f"no account {account_id!r}")
        changed = session.execute(
            update(Account)
            .where(Account.id == account_id, Account.credits + amount >= 0)
            .values(credits=Account.credits + amount)
        )
        if changed.rowcount == 0:  # type: ignore[attr-defined]
            raise InvalidRequest("the balance cannot go below zero")
        session.add(_entry(account_id, amount, Reason.GRANT, None, note))
        return session.scalar(select(Account.credits).where(Account.id == account_id)) or 0


def opening_grant(session: Session, account_id: str, amount: int) -> None:
    """The ledger row of a new account's starting credits (the account row holds them)."""
    if amount:
        session.add(_entry(account_id, amount, Reason.GRANT, None, "opening balance"))


def entries(db: Database, account_id: str, limit: int = 100) -> list[Entry]:
    """The newest ``limit`` ledger rows of an account, newest first."""
    with db.read() as session:
        rows = session.scalars(
            select(LedgerEntry)
            .where(LedgerEntry.account_id == account_id)
            .order_by(LedgerEntry.id.desc())
            .limit(limit)
        )
        return [_as_entry(row) for row in rows]


def _as_entry(row: LedgerEntry) -> Entry:
    return Entry(row.amount, row.reason, row.wav_task_id, row.note, row.created_at, row.id)


REASONS = frozenset(reason.value for reason in Reason)


def entry_page(db: Database, account_id: str, query: listing.Query) -> listing.Page[Entry]:
    """The account's ledger rows matching ``query``, newest first (by id, the order they were
    written in): ``search`` is the start of a task id or part of the note, ``status`` a
    reason."""
    found = select(LedgerEntry).where(LedgerEntry.account_id == account_id)
    if query.search is not None:
        found = found.where(
            or_(
                LedgerEntry.wav_task_id.startswith(query.search, autoescape=True),
                LedgerEntry.note.icontains(query.search, autoescape=True),
            )
        )
    if query.status is not None:
        found = found.where(LedgerEntry.reason == query.status)
    if query.since is not None:
        found = found.where(LedgerEntry.created_at >= query.since)
    if query.until is not None:
        found = found.where(LedgerEntry.created_at < query.until)
    counted = found.with_only_columns(LedgerEntry.id).subquery()
    found = listing.seek(found, (LedgerEntry.id,), query)
    with db.read() as session:
        total = session.scalar(select(func.count()).select_from(counted)) or 0
        rows = [_as_entry(row) for row in session.scalars(found)]
    return listing.cut("ledger", rows, query, total, lambda entry: (None, entry.id))


def total(db: Database, account_id: str) -> int:
    """The sum of the whole ledger, which must equal the balance."""
    with db.read() as session:
        return (
            session.scalar(
                select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(
                    LedgerEntry.account_id == account_id
                )
            )
            or 0
        )


def _entry(
    account_id: str, amount: int, reason: Reason, task_id: str | None, note: str = ""
) -> LedgerEntry:
    return LedgerEntry(
        account_id=account_id,
        amount=amount,
        reason=reason.value,
        wav_task_id=task_id,
        note=note[:200],
        created_at=clock.now(),
    )


@dataclass(frozen=True)
class Statement:
    account_id: str
    balance: int
    entries: list[Entry]


def statement(db: Database, account_id: str, limit: int = 100) -> Statement:
    """An account's balance and newest ledger rows; 404 for an unknown account."""
    with db.read() as session:
        balance = session.scalar(select(Account.credits).where(Account.id == account_id))
    if balance is None:
        raise NotFound(f"no account {account_id!r}")
    return Statement(account_id, balance, entries(db, account_id, limit))
