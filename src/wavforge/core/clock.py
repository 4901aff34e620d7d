"""Time in one place: naive UTC datetimes, as stored in the database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def later(seconds: float) -> datetime:
    return now() + timedelta(seconds=seconds)
