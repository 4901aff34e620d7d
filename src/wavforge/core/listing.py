"""What a paged, searched and filtered listing asks for, checked once for the API and console.

A listing is newest first and paged by keyset, never by offset: the cursor is the position of
the last row already seen (its ``created_at`` and id, or a ledger row's id), so a page costs
the same at row 10 and at row 10,000, and rows inserted meanwhile (newer ones, at the top)
neither repeat nor skip a row on later pages. A page also gives the cursor of the page before
it: the position of its first row, marked to read backwards (the rows just newer than it,
read oldest first and turned round), so going back costs the same as going on. The cursor is
opaque to clients: base64url of a small JSON array naming the list it belongs to, so one
list's cursor is refused by another.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, tuple_

from wavforge.audio.options import OutputOptions
from wavforge.core.requests import FIELDS
from wavforge.errors import InvalidRequest

T = TypeVar("T")
U = TypeVar("U")

MAX_LIMIT = 200
DEFAULT_LIMIT = 50
MAX_SEARCH = 200
MAX_CURSOR = 400

# The output formats the console offers by name (a label and the OutputOptions fields);
# ``output=`` filters WAV tasks by the same names.
OUTPUTS: dict[str, tuple[str, dict[str, object]]] = {
    "source": ("As the source", {}),
    "pcm16": ("16-bit PCM", {"bit_depth": 16}),
    "pcm24": ("24-bit PCM", {"bit_depth": 24}),
    "float32": ("32-bit float", {"bit_depth": 32, "sample_format": "float"}),
}


def output_key(name: str) -> str:
    """The ``format_key`` a task converted to the named output carries."""
    return OutputOptions.parse(OUTPUTS[name][1], {f: f for f in FIELDS}).key()


@dataclass(frozen=True)
class Position:
    """Where the previous page ended: the last row's ``created_at`` (None for the ledger,
    whose order is its id) and id."""

    created_at: datetime | None
    row_id: str | int
    backward: bool = False  # the page before this position, not the one after it

    def values(self) -> tuple[Any, ...]:
        """The position in the order's columns: (created_at, id), or (id,) for the ledger."""
        return (self.row_id,) if self.created_at is None else (self.created_at, self.row_id)


@dataclass(frozen=True)
class Query:
    """A checked listing request; ``status`` is one of the values the list accepts."""

    limit: int = DEFAULT_LIMIT
    after: Position | None = None
    search: str | None = None
    status: str | None = None
    since: datetime | None = None
    until: datetime | None = None  # exclusive
    output: str | None = None  # a key of OUTPUTS


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    total: int  # every row matching the search and filters, on all pages
    next_cursor: str | None  # None on the last page
    prev_cursor: str | None = None  # None on the first page

    def showing(self, items: list[U]) -> Page[U]:
        """The same page with its rows made into what the caller shows."""
        return Page(items, self.total, self.next_cursor, self.prev_cursor)


def parse(
    kind: str,
    *,
    limit: int | str | None = None,
    cursor: str | None = None,
    q: str | None = None,
    status: str | None = None,
    statuses: Collection[str] = (),
    since: str | None = None,
    until: str | None = None,
    output: str | None = None,
) -> Query:
    """Check a listing request as sent (strings from a query string or a form); a bad value
    raises :class:`InvalidRequest` naming it. Empty strings mean "not given" (an HTML form
    sends its empty fields)."""
    return Query(
        limit=_limit(limit),
        after=decode(kind, cursor) if cursor else None,
        search=_search(q),
        status=_choice("status", status, statuses),
        since=_time("since", since),
        until=_time("until", until, end_of_day=True),
        output=_choice("output", output, OUTPUTS),
    )


def _limit(value: int | str | None) -> int:
    if value is None or value == "":
        return DEFAULT_LIMIT
    try:
        limit = int(value)
    except ValueError:
        raise InvalidRequest("limit must be an integer") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequest(f"limit must be between 1 and {MAX_LIMIT}")
    return limit


def _search(value: str | None) -> str | None:
    text = (value or "").strip()
    if len(text) > MAX_SEARCH:
        raise InvalidRequest(f"q must be at most {MAX_SEARCH} characters")
    return text or None


def _choice(name: str, value: str | None, allowed: Collection[str]) -> str | None:
    if not value:
        return None
    if value not in allowed:
        raise InvalidRequest(f"{name} must be one of: {', '.join(sorted(allowed))}")
    return value


def _time(name: str, value: str | None, end_of_day: bool = False) -> datetime | None:
    """An ISO 8601 date or time; a date alone covers its whole day (UTC) at either end."""
    if not value:
        return None
    try:
        if len(value) == 10:
            day = datetime.combine(date.fromisoformat(value), time())
            return day + timedelta(days=1) if end_of_day else day
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidRequest(f"{name} must be an ISO 8601 date or time") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


_BACKWARD = "prev"


def encode(
    kind: str, created_at: datetime | None, row_id: str | int, backward: bool = False
) -> str:
    stamp = created_at.isoformat() if created_at is not None else None
    fields: list[Any] = [kind, stamp, row_id, *([_BACKWARD] if backward else [])]
    raw = json.dumps(fields, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(kind: str, cursor: str) -> Position:
    """The position a cursor of list ``kind`` names; anything else is a 400."""
    bad = InvalidRequest("cursor is not one this listing gave out")
    if len(cursor) > MAX_CURSOR:
        raise bad
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        found, stamp, row_id, *direction = json.loads(raw)
        created_at = datetime.fromisoformat(stamp) if stamp is not None else None
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise bad from None
    if found != kind or not _id_ok(kind, row_id) or (created_at is None) != (kind == "ledger"):
        raise bad
    if direction not in ([], [_BACKWARD]):
        raise bad
    return Position(created_at, row_id, backward=bool(direction))


def _id_ok(kind: str, row_id: Any) -> bool:
    if kind == "ledger":  # an integer id; JSON's true and false are not ids
        return isinstance(row_id, int) and not isinstance(row_id, bool)
    return isinstance(row_id, str) and 0 < len(row_id) <= 128


def seek(found: Select[Any], order: tuple[Any, ...], query: Query) -> Select[Any]:
    """``found`` limited to the page ``query`` asks for, in the order of the columns ``order``
    (``created_at`` and id, or the ledger's id), plus one row that tells whether there is
    more. A row-value comparison, so the (account, created_at, id) index seeks to it."""
    position = query.after
    if position is None:
        return found.order_by(*(column.desc() for column in order)).limit(query.limit + 1)
    here = tuple_(*order), tuple_(*position.values())
    if position.backward:  # the rows just newer than the position, nearest first
        found = found.where(here[0] > here[1]).order_by(*(column.asc() for column in order))
    else:
        found = found.where(here[0] < here[1]).order_by(*(column.desc() for column in order))
    return found.limit(query.limit + 1)


def cut(
    kind: str,
    rows: list[T],
    query: Query,
    total: int,
    position_of: Callable[[T], tuple[datetime | None, str | int]],
) -> Page[T]:
    """The page of the rows :func:`seek` found (newest first), with the cursors around it."""
    backward = query.after is not None and query.after.backward
    more = len(rows) > query.limit
    shown = rows[: query.limit]
    if backward:
        shown.reverse()
    if not shown:
        return Page([], total, None, None)
    has_next = more if not backward else True  # came back from a later page
    has_prev = more if backward else query.after is not None
    return Page(
        shown,
        total,
        encode(kind, *position_of(shown[-1])) if has_next else None,
        encode(kind, *position_of(shown[0]), backward=True) if has_prev else None,
    )


def params(query: Query, **extra: str | None) -> Mapping[str, str]:
    """A query's filters as query-string parameters (no cursor), for links to other pages."""
    values = {
        "q": query.search,
        "status": query.status,
        "output": query.output,
        "since": query.since.isoformat() if query.since else None,
        "until": query.until.isoformat() if query.until else None,
        "limit": str(query.limit) if query.limit != DEFAULT_LIMIT else None,
        **extra,
    }
    return {name: value for name, value in values.items() if value}
