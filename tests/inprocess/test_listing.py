"""Paged listings in the core: the cursor and the checks of wavforge.core.listing, and the
query plans of a page on SQLite with 10,000 rows (index-driven: no scan of the table, no sort
of the account's rows)."""

from __future__ import annotations

import base64
import json
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, insert, select

from wavforge.core import history, ledger, listing
from wavforge.core.context import Context
from wavforge.core.records import TrackRecord
from wavforge.db.models import LedgerEntry, Track, WavTask, column_values
from wavforge.errors import InvalidRequest

from .support import Account, new_account, submit

ROWS = 10_000


def test_a_cursor_names_its_list_and_position_and_nothing_else() -> None:
    query = listing.parse("tracks", limit="7", q="  Mix ", status="SUCCESS", statuses={"SUCCESS"})
    assert (query.limit, query.search, query.status) == (7, "Mix", "SUCCESS")
    cursor = listing.encode("tracks", listing.parse("x", since="2026-01-02").since, "abc")
    assert listing.decode("tracks", cursor).row_id == "abc"
    assert listing.decode("ledger", listing.encode("ledger", None, 12)).row_id == 12
    moment = listing.decode("tracks", cursor).created_at
    backward = listing.decode("tracks", listing.encode("tracks", moment, "abc", backward=True))
    assert backward.backward and not listing.decode("tracks", cursor).backward
    for kind, bad in [
        ("wav-tasks", cursor),  # another list's
        ("tracks", _raw_cursor(["tracks", "2026-01-02T00:00:00", "abc", "next"])),
        ("tracks", cursor[:-2]),
        ("tracks", "%%%"),
        ("ledger", listing.encode("ledger", None, True)),  # JSON's true is not an id
        ("ledger", listing.encode("ledger", None, "12")),
        ("tracks", "A" * (listing.MAX_CURSOR + 1)),
    ]:
        with pytest.raises(InvalidRequest, match="cursor"):
            listing.decode(kind, bad)


def _raw_cursor(fields: list[Any]) -> str:
    raw = json.dumps(fields).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    ("field", "value"),
    [("limit", "0"), ("limit", "x"), ("limit", "201"), ("since", "soon"), ("output", "mp3")],
)
def test_a_bad_value_names_its_field(field: str, value: str) -> None:
    with pytest.raises(InvalidRequest, match=field):
        listing.parse("tracks", **{field: value})


def test_a_date_covers_its_whole_day_and_times_are_taken_to_utc() -> None:
    query = listing.parse("tracks", since="2026-03-01", until="2026-03-01")
    assert query.until is not None and query.since is not None
    assert query.until - query.since == timedelta(days=1)
    moment = listing.parse("tracks", since="2026-03-01T12:00:00+02:00").since
    assert moment is not None and moment.isoformat() == "2026-03-01T10:00:00"


@pytest.fixture
def crowded(ctx: Context, account: Account, track: TrackRecord) -> Account:
    """``account`` with 10,000 tracks, 10,000 WAV tasks and 10,000 ledger rows (copies of real
    ones, a second apart), and another account with as many rows beside them."""
    submit(ctx, account, track)
    other = new_account(ctx, name="other")
    with ctx.db.write() as session:
        base_track = column_values(session.scalars(select(Track)).one())
        base_task = column_values(session.scalars(select(WavTask)).one())
        base_entry = column_values(session.scalars(select(LedgerEntry)).first())
        for owner in (account.id, other.id):
            start = base_track["created_at"]
            session.execute(
                insert(Track),
                [
                    base_track
                    | {"id": f"{owner[-6:]}-t{n}", "account_id": owner, "title": f"Song {n}"}
                    | {"created_at": start + timedelta(seconds=n // 2)}
                    for n in range(ROWS)
                ],
            )
            session.execute(
                insert(WavTask),
                [
                    base_task
                    | {"id": f"{owner[-6:]}-w{n}", "account_id": owner, "live_track_id": None}
                    | {"track_id": f"{owner[-6:]}-t{n}", "status": "SUCCESS"}
                    | {"created_at": start + timedelta(seconds=n // 2)}
                    for n in range(ROWS)
                ],
            )
            session.execute(
                insert(LedgerEntry),
                [base_entry | {"id": None, "account_id": owner} for _ in range(ROWS)],
            )
    return account


@contextmanager
def statements(ctx: Context) -> Iterator[list[tuple[str, Any]]]:
    """The SQL statements (and their parameters) the context's database runs meanwhile."""
    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, sql: str, params: Any, *args: Any) -> None:
        seen.append((sql, params))

    engine = ctx.db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def plans(ctx: Context, run: Callable[[], Any]) -> list[str]:
    """The query plan of every SELECT that ``run`` makes, one string each."""
    with statements(ctx) as seen:
        run()
    path = ctx.db.engine.url.database
    assert path is not None
    with sqlite3.connect(path) as conn:
        return [
            " | ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params))
            for sql, params in seen
            if sql.lstrip().upper().startswith("SELECT")
        ]


def pages(ctx: Context, account: Account) -> dict[str, Callable[[str | None], Any]]:
    def tracks(cursor: str | None) -> Any:
        query = listing.parse("tracks", cursor=cursor, statuses=history.TRACK_STATES)
        return history.track_page(ctx, account.id, query)

    def tasks(cursor: str | None) -> Any:
        query = listing.parse("wav-tasks", cursor=cursor, statuses=history.TASK_STATES)
        return history.wav_task_page(ctx, account.id, query)

    def entries(cursor: str | None) -> Any:
        query = listing.parse("ledger", cursor=cursor, statuses=ledger.REASONS)
        return ledger.entry_page(ctx.db, account.id, query)

    return {"tracks": tracks, "wav-tasks": tasks, "ledger": entries}


INDEXES = {
    "tracks": "ix_tracks_account_created",
    "wav-tasks": "ix_wav_tasks_account_created",
    "ledger": "ix_ledger_entries_account_id",
}


@pytest.mark.parametrize("backward", [False, True], ids=["next", "previous"])
@pytest.mark.parametrize("kind", INDEXES)
def test_a_page_deep_in_ten_thousand_rows_seeks_by_index(
    ctx: Context, crowded: Account, kind: str, backward: bool
) -> None:
    page = pages(ctx, crowded)[kind]
    first = page(None)
    assert first.total >= ROWS and len(first.items) == listing.DEFAULT_LIMIT
    deep = listing.encode(kind, *_position(kind, first, ROWS // 2), backward=backward)
    count, rows = plans(ctx, lambda: page(deep))
    print("\nPLAN", kind, "\n  COUNT:", count, "\n  ROWS:", rows)
    assert "INDEX" in count and "(account_id=?)" in count, count  # the total: by an index
    assert "SCAN" not in count.replace("SCAN (subquery", "")
    assert f"INDEX {INDEXES[kind]} (account_id=? AND " in rows or (
        kind == "ledger"
        and f"INDEX {INDEXES[kind]} (account_id=? AND rowid{'>' if backward else '<'}?)" in rows
    ), rows
    assert "TEMP B-TREE" not in rows.split(" | ")[0], rows  # the page's order is the index's
    assert "SCAN tracks" not in rows and "SCAN wav_tasks" not in rows, rows


def _keys(kind: str, found: Any) -> list[Any]:
    return [row.track.id if kind == "tracks" else row.id for row in found.items]


@pytest.mark.parametrize("kind", INDEXES)
def test_going_back_gives_the_pages_going_on_gave(
    ctx: Context, crowded: Account, kind: str
) -> None:
    """On by nextCursor for four pages, then back by prevCursor to the first: the same rows in
    the same order on each page, no prevCursor on the first page, and going on again from a
    page reached backwards gives the page that followed it."""
    page = pages(ctx, crowded)[kind]
    forward = [page(None)]
    for _ in range(3):
        forward.append(page(forward[-1].next_cursor))
    assert forward[0].prev_cursor is None and all(p.prev_cursor for p in forward[1:])
    back = [forward[-1]]
    while back[-1].prev_cursor is not None:
        back.append(page(back[-1].prev_cursor))
    assert [_keys(kind, p) for p in reversed(back)] == [_keys(kind, p) for p in forward]
    assert _keys(kind, page(back[-1].next_cursor)) == _keys(kind, forward[1])
    assert all(len(p.items) == listing.DEFAULT_LIMIT for p in back)


def _position(kind: str, first: Any, n: int) -> tuple[Any, Any]:
    """A position n rows down (near enough: a row of the account's)."""
    if kind == "ledger":
        return None, first.items[0].id - n
    item = first.items[0]
    row = item.track if kind == "tracks" else item
    return row.created_at - timedelta(seconds=n // 2), row.id


def test_paging_a_crowded_list_returns_each_row_once_in_order(
    ctx: Context, crowded: Account
) -> None:
    seen: list[str] = []
    cursor = None
    while True:
        query = listing.parse("tracks", limit=200, cursor=cursor, statuses=history.TRACK_STATES)
        found = history.track_page(ctx, crowded.id, query)
        seen += [row.track.id for row in found.items]
        cursor = found.next_cursor
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == ROWS + 1
    assert sum(not row_id.startswith(crowded.id[-6:]) for row_id in seen) == 1  # the real one
    assert seen[0] == f"{crowded.id[-6:]}-t{ROWS - 1}"  # newest first; ties by id, descending
