"""SQLite's one writer at a time (``db.database``): a writer never holds its turn while it
waits for a pooled connection. The pool can be empty precisely because every connection is
held by a thread queued for the turn (a burst of submissions); a turn-holder waiting for the
pool would then stall every writer of the machine until the pool's 30 s timeout."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from wavforge.db.database import Database, WouldWait, in_place
from wavforge.db.models import Account, table_of
from wavforge.db.rows import DriverRows

ACCOUNTS = table_of(Account)


@pytest.fixture
def path(migrated: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "wavforge.db"
    shutil.copyfile(migrated, copy)
    return copy


@pytest.fixture
def database(path: Path) -> Iterator[Database]:
    db = Database(f"sqlite:///{path}")
    yield db
    db.dispose()


def _pool_size(db: Database) -> int:
    pool = db.engine.pool
    return int(pool.size() + pool._max_overflow)  # type: ignore[attr-defined]


def _turn_is_free(path: Path) -> bool:
    """Whether another process's writer gets its turn now (a second Database on the file
    is what another process would have)."""
    other = Database(f"sqlite:///{path}")
    try:
        with in_place(), other.write_rows() as rows:
            assert isinstance(rows, DriverRows)
        return True
    except WouldWait:
        return False
    finally:
        other.dispose()


def test_a_writer_waiting_for_the_pool_does_not_hold_the_turn(
    database: Database, path: Path
) -> None:
    held = [database.engine.raw_connection() for _ in range(_pool_size(database))]
    entered, done = threading.Event(), threading.Event()

    def write() -> None:
        with database.write() as session:
            session.execute(select(ACCOUNTS).limit(1))
            entered.set()
        done.set()

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        assert not entered.wait(0.3)  # the pool is empty: it waits...
        assert _turn_is_free(path)  # ...and every other writer goes on meanwhile
    finally:
        for connection in held:
            connection.close()
    assert done.wait(10)
    writer.join()


def test_a_burst_of_writers_of_both_kinds_never_stalls(database: Database) -> None:
    """Three times the pool's connections, half in sessions and half on plain rows, all
    at once: every one commits, well inside the pool's timeout."""
    writers = 3 * _pool_size(database)
    barrier = threading.Barrier(writers)
    errors: list[BaseException] = []

    def write(number: int) -> None:
        try:
            barrier.wait()
            if number % 2:
                with database.write() as session:
                    session.execute(select(ACCOUNTS).limit(1))
            else:
                with database.write_rows() as rows:
                    rows.first(select(ACCOUNTS).limit(1), {})
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=write, args=(n,), daemon=True) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
