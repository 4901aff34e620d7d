"""``Idempotency-Key`` on submissions (CONTRACT §8, Stripe's semantics).

The first request with a key inserts a row (the primary key makes that a race one request
wins); it runs and stores its answer there. A later request with the key gets that answer
back; one with a different body is refused (400); one that arrives while the first is still
running gets 409 and may try again. Keys live at least ``KEEP`` (the purge removes older ones).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError

from wavforge.core import clock
from wavforge.db.database import Database
from wavforge.db.models import IdempotencyKey
from wavforge.errors import Conflict, InvalidRequest, TooLarge

KEEP = timedelta(hours=24)
MAX_KEY_LENGTH = 255
KEY_CHARS = re.compile(r"[\x21-\x7e]+")  # visible ASCII, as header values should be


@dataclass(frozen=True)
class StoredAnswer:
    status_code: int
    body: dict[str, Any]


def begin(db: Database, account_id: str, key: str, fingerprint: str) -> StoredAnswer | None:
    """Claim ``key`` for a request: None means "run it", an answer means "send this back"."""
    _check(key)
    try:
        with db.write() as session:
            session.add(
                IdempotencyKey(
                    account_id=account_id, key=key, fingerprint=fingerprint, created_at=clock.now()
                )
            )
        return None
    except IntegrityError:
        pass
    with db.read() as session:
        row = session.get(IdempotencyKey, (account_id, key))
    if row is None or row.status_code is None:  # gone again means its first request failed
        raise Conflict("a request with this Idempotency-Key is in progress; try again shortly")
    if row.fingerprint != fingerprint:
        raise InvalidRequest("this Idempotency-Key was used with a different request")
    return StoredAnswer(row.status_code, dict(row.body or {}))


def finish(db: Database, account_id: str, key: str, status_code: int, body: dict[str, Any]) -> None:
    """Store the first request's answer for every later request with the key."""
    with db.write() as session:
        session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.account_id == account_id, IdempotencyKey.key == key)
            .values(status_code=status_code, body=body)
        )


def abandon(db: Database, account_id: str, key: str) -> None:
    """Forget a claim whose request did not finish (a server error), so a retry can run."""
    with db.write() as session:
        session.execute(
            delete(IdempotencyKey).where(
                IdempotencyKey.account_id == account_id, IdempotencyKey.key == key
            )
        )


def purge(db: Database, now: datetime | None = None) -> int:
    """Delete keys older than :data:`KEEP`; returns how many."""
    cutoff = (now or clock.now()) - KEEP
    with db.write() as session:
        result = session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at < cutoff))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _check(key: str) -> None:
    if len(key) > MAX_KEY_LENGTH:
        raise TooLarge(f"Idempotency-Key is longer than {MAX_KEY_LENGTH} characters")
    if not KEY_CHARS.fullmatch(key):
        raise InvalidRequest("Idempotency-Key must be 1 to 255 visible ASCII characters")
