"""Plain rows (``db.rows``): on SQLite the hot statements run on the driver, on PostgreSQL
through SQLAlchemy; either way a row reads back what was written, with the same types, and
errors are SQLAlchemy's. Also the WAL checkpoints that run beside the writers."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from wavforge.db import migrate
from wavforge.db.checkpoints import INTERVAL_SECONDS
from wavforge.db.database import Database
from wavforge.db.models import Account, IdempotencyKey, MusicTask, table_of
from wavforge.errors import InvalidRequest

from conftest import MakeServer, wait_until

ACCOUNTS = table_of(Account)
IDEMPOTENCY = table_of(IdempotencyKey)
MUSIC_TASKS = table_of(MusicTask)
ACCOUNT_BY_ID = select(ACCOUNTS).where(ACCOUNTS.c.id == bindparam("id"))
ANSWER_OF = select(IDEMPOTENCY.c.body, IDEMPOTENCY.c.created_at, IDEMPOTENCY.c.status_code).where(
    IDEMPOTENCY.c.account_id == bindparam("account_id")
)
SPEND = (
    update(ACCOUNTS)
    .where(ACCOUNTS.c.id == bindparam("account"), ACCOUNTS.c.credits >= bindparam("cost"))
    .values(credits=ACCOUNTS.c.credits - bindparam("cost"))
)
WHEN = datetime(2026, 11, 22, 1, 2, 3, 456789)


@pytest.fixture
def db(make_server: MakeServer, tmp_path: Path) -> Iterator[Database]:
    """The database of the deployment under test (SQLite file, or PostgreSQL), migrated."""
    database = Database(make_server(tmp_path).settings().resolved_database_url)
    migrate.upgrade(database)
    yield database
    database.dispose()


def _account(account_id: str, **changes: object) -> dict[str, object]:
    return {
        "id": account_id,
        "name": "rows",
        "credits": 5,
        "is_admin": True,
        "webhook_secret": "whsec_x",
        "previous_webhook_secret": None,
        "previous_secret_until": WHEN,
        "created_at": WHEN,
    } | changes


def test_a_row_reads_back_what_was_written_with_its_types(db: Database) -> None:
    body = {"code": 200, "data": {"taskId": "t1", "ok": [1, 2.5, None, True]}}
    with db.write_rows() as rows:
        rows.run(insert(ACCOUNTS), _account("acct_rows"))
        rows.run(
            insert(IDEMPOTENCY),
            {
                "account_id": "acct_rows",
                "key": "k",
                "fingerprint": "f" * 64,
                "status_code": 200,
                "body": body,
                "created_at": WHEN,
            },
        )
    with db.read_rows() as rows:
        account = rows.first(ACCOUNT_BY_ID, {"id": "acct_rows"})
        answer = rows.first(ANSWER_OF, {"account_id": "acct_rows"})
        assert rows.first(ACCOUNT_BY_ID, {"id": "acct_missing"}) is None
        assert rows.scalar(select(ACCOUNTS.c.credits).where(ACCOUNTS.c.id == "acct_rows"), {}) == 5
    assert account is not None and answer is not None
    assert (account.id, account.credits, account.is_admin) == ("acct_rows", 5, True)
    assert account.is_admin is True and account.previous_webhook_secret is None
    assert account.created_at == WHEN and account.previous_secret_until == WHEN
    assert answer.body == body and answer.created_at == WHEN and answer.status_code == 200
    # What the ORM reads is the same.
    with db.read() as session:
        orm = session.get(Account, "acct_rows")
        assert orm is not None
        assert (orm.created_at, orm.is_admin, orm.credits) == (WHEN, True, 5)


def test_run_counts_matched_rows_and_a_failure_leaves_nothing(db: Database) -> None:
    with db.write_rows() as rows:
        rows.run(insert(ACCOUNTS), _account("acct_spend"))
        assert rows.run(SPEND, {"account": "acct_spend", "cost": 2}) == 1
        assert rows.run(SPEND, {"account": "acct_spend", "cost": 9}) == 0
    with pytest.raises(RuntimeError), db.write_rows() as rows:
        rows.run(SPEND, {"account": "acct_spend", "cost": 3})
        rows.run(insert(ACCOUNTS), _account("acct_half_made"))
        raise RuntimeError("the caller fails half-way")
    with db.read_rows() as rows:
        assert rows.first(ACCOUNT_BY_ID, {"id": "acct_spend"}).credits == 3
        assert rows.first(ACCOUNT_BY_ID, {"id": "acct_half_made"}) is None


def test_errors_are_sqlalchemys_and_nul_is_a_bad_request(db: Database) -> None:
    with db.write_rows() as rows:
        rows.run(insert(ACCOUNTS), _account("acct_twice"))
    with pytest.raises(IntegrityError), db.write_rows() as rows:
        rows.run(insert(ACCOUNTS), _account("acct_twice"))
    with pytest.raises(InvalidRequest, match="NUL"), db.read_rows() as rows:
        rows.first(ACCOUNT_BY_ID, {"id": "acct\x00twice"})
    with pytest.raises(InvalidRequest, match="NUL"), db.write_rows() as rows:
        rows.run(insert(ACCOUNTS), _account("acct_nul", name="a\x00b"))
    with db.read_rows() as rows:
        assert rows.first(ACCOUNT_BY_ID, {"id": "acct_nul"}) is None


def test_the_driver_refuses_what_it_would_get_wrong(tmp_path: Path) -> None:
    """On SQLite: an IN list expanded per execution, an INSERT that leaves a column to its
    Python-side default, a parameter not given. Each is a programming error, said at once."""
    db = Database(f"sqlite:///{tmp_path / 'refusals.db'}")
    migrate.upgrade(db)
    try:
        expanding = select(ACCOUNTS.c.id).where(ACCOUNTS.c.id.in_(["a", "b"]))
        with pytest.raises(ValueError, match="expanding"), db.read_rows() as rows:
            rows.first(expanding, {})
        partial = {key: value for key, value in _account("acct_p").items() if key != "credits"}
        with pytest.raises(ValueError, match="every column"), db.write_rows() as rows:
            rows.run(insert(ACCOUNTS), partial)
        with pytest.raises(KeyError, match="'id'"), db.read_rows() as rows:
            rows.first(ACCOUNT_BY_ID, {})
    finally:
        db.dispose()


def checkpointed(path: Path) -> bool:
    """Whether the file holds every page of the database, as a reader sees it through the
    log: then the log has been copied back (a reader never checkpoints)."""
    with closing(sqlite3.connect(path)) as reader:
        (pages,) = reader.execute("PRAGMA page_count").fetchone()
        (page_size,) = reader.execute("PRAGMA page_size").fetchone()
    return path.stat().st_size >= pages * page_size


def test_a_thread_checkpoints_the_log_beside_the_writers(tmp_path: Path) -> None:
    """Commits leave the log to the checkpointer thread (far below the connections' own
    threshold here), which copies it into the database file within a few intervals."""
    path = tmp_path / "checkpoints.db"
    db = Database(f"sqlite:///{path}")
    migrate.upgrade(db)
    try:
        wait_until(lambda: checkpointed(path))  # the migration's pages are in the file
        size = path.stat().st_size
        with db.write_rows() as rows:
            for number in range(300):
                rows.run(insert(ACCOUNTS), _account(f"acct_{number:04d}", name="x" * 150))
        deadline = time.monotonic() + 10
        while path.stat().st_size <= size and time.monotonic() < deadline:
            time.sleep(INTERVAL_SECONDS / 2)
        assert path.stat().st_size > size
    finally:
        db.dispose()
