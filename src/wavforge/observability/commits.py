"""Run an action once the transaction a session is in has committed, and never if it rolls back.

A charge is written inside the submission's transaction, which may still fail after it (the
unfinished-task quota, a racing submission on the same track): counting the charge when the
ledger row is written would count credits that never moved. The core registers the count
here instead, and it runs after the outermost commit. Savepoints are not commits: releasing
one runs nothing, and the outer transaction still decides; rolling one back drops what was
registered inside it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

log = logging.getLogger(__name__)

_PENDING = "wavforge_on_commit"


def on_commit(session: Session, action: Callable[[], None]) -> None:
    """Run ``action`` after ``session``'s current transaction commits, if it does."""
    current = session.get_nested_transaction() or session.get_transaction()
    session.info.setdefault(_PENDING, []).append((current, action))


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint was released; the outer transaction may still roll back
    for _, action in session.info.pop(_PENDING, ()):
        try:
            action()
        except Exception:  # a metric must never fail what has already committed
            log.exception("an after-commit action failed")


@event.listens_for(Session, "after_soft_rollback")
def _rolled_back(session: Session, previous: SessionTransaction) -> None:
    pending = session.info.get(_PENDING)
    if pending:
        pending[:] = [(tx, action) for tx, action in pending if not _within(tx, previous)]


@event.listens_for(Session, "after_transaction_end")
def _ended(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop(_PENDING, None)  # the whole transaction is over, committed or not


def _within(transaction: SessionTransaction | None, outer: SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is outer:
            return True
        transaction = transaction.parent
    return False
