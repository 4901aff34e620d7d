"""Engine, transactions, and the one door through which async code does database work.

The door: ``await db.run(fn, ...)`` for a request's short database work, ``await
db.run_in_thread(fn, ...)`` for work that may also wait on files, object storage or many
rows, and ``await db.run_or_skip(fn, ...)`` for bookkeeping that may be left to a later
request. The door, not the caller, decides whether the work runs in the event loop or in a
worker thread, because the right answer depends on the backend (see :meth:`Database.run`).
Other blocking work of a request goes to a thread through :func:`wavforge.offload.in_thread`
alone (a ruff rule bans ``run_in_threadpool``), so the rule lives in one place.

Two kinds of transaction: :meth:`Database.write` and :meth:`Database.read`. On SQLite a write
starts with ``BEGIN IMMEDIATE`` so concurrent writers queue on the busy timeout instead of
failing half-way with "database is locked" when a read lock would need upgrading; reads start
a plain deferred transaction and never block writers (WAL). Other databases use their
ordinary transactions.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar
from pathlib import Path
from typing import Any, ParamSpec, TypeVar, cast

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from wavforge.db.checkpoints import Checkpointer, leave_the_log_alone
from wavforge.db.rows import DriverRows, EngineRows, Plans, Rows, driver_call, refuse_nul
from wavforge.offload import in_thread

BUSY_TIMEOUT_SECONDS = 30
P = ParamSpec("P")
T = TypeVar("T")
_READ_ONLY = "wavforge_read_only"


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = _create_engine(url)
        self._writer = sessionmaker(self.engine, expire_on_commit=False)
        self._read_engine = self.engine.execution_options(**{_READ_ONLY: True})
        self._plans = Plans(self.engine.dialect)
        self._one_writer: AbstractContextManager[object] = (
            WriterQueue(_lock_path(self.engine.url.database)) if self.is_sqlite else nullcontext()
        )
        self._checkpointer = _checkpointer(self.engine.url.database) if self.is_sqlite else None
        if self._checkpointer:
            self._checkpointer.start()
        self._reader = sessionmaker(self._read_engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A transaction that commits on success and rolls back on any exception.

        The connection is taken from the pool before this writer's turn, as in
        :meth:`write_rows`: the two must take them in the same order. A thread holding the
        turn that then waited for the pool could wait for good, for the pool may be empty
        precisely because every connection is held by a thread queued for the turn (50
        submissions at once did that, for the pool's 30 s timeout).
        """
        with (
            self.engine.connect() as connection,
            self._one_writer,
            self._writer(bind=connection) as session,
            session.begin(),
        ):
            yield session

    @contextmanager
    def write_rows(self) -> Iterator[Rows]:
        """A write transaction on plain rows (see :mod:`wavforge.db.rows`), for the one every
        submission makes.

        A session's unit of work and bookkeeping cost more than the statements themselves.
        The connection is taken from the pool before this writer's turn, so the turn holds
        only the transaction.
        """
        if not self.is_sqlite:
            with self.engine.connect() as connection, connection.begin():
                yield EngineRows(connection)
            return
        with self._driver_connection() as driver, self._one_writer:
            _begin_immediate(driver)
            try:
                yield DriverRows(driver, self._plans)
            except BaseException:
                driver.rollback()
                raise
            driver_call(driver.commit)

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._reader() as session:
            yield session

    @contextmanager
    def read_rows(self) -> Iterator[Rows]:
        """Reads on plain rows (see :mod:`wavforge.db.rows`) and, on SQLite, without a
        transaction: for the reads every request makes.

        A session's identity map and object loading cost several times the query itself;
        authentication and status polling run on every request, so they take plain rows.
        On SQLite each statement then reads its own snapshot, which saves a BEGIN and a
        ROLLBACK per request: use it where each statement stands on its own.
        """
        if not self.is_sqlite:
            with self.engine.connect() as connection:
                yield EngineRows(connection)
            return
        with self._driver_connection() as driver:
            yield DriverRows(driver, self._plans)

    @contextmanager
    def _driver_connection(self) -> Iterator[sqlite3.Connection]:
        """A pooled SQLite connection as the driver's own object, in autocommit mode (the
        ``connect`` listener below set it up), given back to the pool afterwards."""
        pooled = self.engine.raw_connection()
        try:
            yield cast(sqlite3.Connection, pooled.driver_connection)
        finally:
            pooled.close()

    async def run(self, work: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Short database work of a request (the key, a task's state, a submission's
        transaction): in the event loop on SQLite, in a thread on a database server.

        On SQLite such work is a call into this process: a read takes tens of microseconds
        and waits for no lock (WAL), a write a few hundred and queues behind at most one
        other writer (``WriterQueue``). A trip to a thread costs more CPU than a read on a
        small machine under load (about 0.3 ms per request) and makes the threads fight over
        the GIL; and a writer thread holds the file's lock while it waits for the GIL.

        In the event loop nothing may wait for a lock: a write that finds the database
        locked gives up before it has done anything (:func:`in_place`) and runs again in a
        thread, so that only this request waits, not every request of the process.
        """
        if not self.is_sqlite:
            return await in_thread(work, *args, **kwargs)
        try:
            with in_place():
                return work(*args, **kwargs)
        except WouldWait:
            return await in_thread(work, *args, **kwargs)

    async def run_in_thread(self, work: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Work that may wait on more than the database (files, object storage, a listing of
        many rows): always in a worker thread, whatever the backend."""
        return await in_thread(work, *args, **kwargs)

    async def run_or_skip(self, work: Callable[P, None], *args: P.args, **kwargs: P.kwargs) -> None:
        """Bookkeeping a later request can do as well (noting a key's last use): on SQLite
        it is skipped rather than made to wait for another writer; elsewhere, a thread."""
        if not self.is_sqlite:
            await in_thread(work, *args, **kwargs)
            return
        with contextlib.suppress(WouldWait), in_place():
            work(*args, **kwargs)

    def dispose(self) -> None:
        if self._checkpointer:
            self._checkpointer.stop()
        self.engine.dispose()


class WouldWait(Exception):
    """A write :func:`in_place` found the database locked: run it again where waiting is
    allowed (a thread). Raised before the transaction did anything."""


_IN_PLACE: ContextVar[bool] = ContextVar("wavforge_db_in_place", default=False)
# How long a write in place may wait for the writer before it: about ten submissions' turns,
# which keeps the queue of a busy machine in place, and bounds what it can cost the loop.
IN_PLACE_WAIT_SECONDS = 0.005


@contextmanager
def in_place() -> Iterator[None]:
    """Writes in this block wait for a lock at most ``IN_PLACE_WAIT_SECONDS``; one that
    would wait longer raises :class:`WouldWait`.

    The API's short database work runs in its event loop on SQLite, where a write that
    waited for another writer (a process holding the file, a backup) would stop every
    request of the process; this lets it try, and hand over to a thread only then.
    """
    token = _IN_PLACE.set(True)
    try:
        yield
    finally:
        _IN_PLACE.reset(token)


def _begin_immediate(driver: sqlite3.Connection) -> None:
    """``BEGIN IMMEDIATE``, at once or :class:`WouldWait` when in place and locked."""
    if not _IN_PLACE.get():
        driver_call(driver.execute, "BEGIN IMMEDIATE")
        return
    driver.execute(f"PRAGMA busy_timeout={int(IN_PLACE_WAIT_SECONDS * 1000)}")
    try:
        driver.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as error:
        if error.sqlite_errorcode in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            raise WouldWait() from None
        raise DBAPIError.instance("BEGIN IMMEDIATE", None, error, sqlite3.Error) from error
    finally:
        driver.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_SECONDS * 1000}")


class WriterQueue:
    """One SQLite writer at a time among the threads and processes of this machine.

    SQLite takes one writer at a time, and a writer that finds the file locked polls with
    sleeps of up to 100 ms. Writers queue here instead, on a thread lock and an ``flock`` of
    a file beside the database, and the next one starts the moment the last one commits:
    under a burst of submissions from two API processes the polling kept both cores half
    idle. Re-entrant within a thread, so that a nested write fails on SQLite's busy timeout
    as before rather than hanging.
    """

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._threads = threading.RLock()
        self._depth = 0
        self._file: int | None = None

    def __enter__(self) -> None:
        in_place = _IN_PLACE.get()
        deadline = time.monotonic() + IN_PLACE_WAIT_SECONDS
        if not self._threads.acquire(timeout=IN_PLACE_WAIT_SECONDS if in_place else -1):
            raise WouldWait()
        self._depth += 1
        if self._depth == 1 and self._path is not None:
            try:
                self._lock_file(deadline if in_place else None)
            except BaseException:
                self._release()
                raise

    def _lock_file(self, deadline: float | None) -> None:
        """``flock`` the file: waiting, or polling until ``deadline`` (then WouldWait)."""
        descriptor = self._descriptor(self._path) if self._path else -1
        if deadline is None:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            return
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise WouldWait() from None
                time.sleep(0.0002)

    def __exit__(self, *_: object) -> None:
        if self._depth == 1 and self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
        self._release()

    def _release(self) -> None:
        self._depth -= 1
        self._threads.release()

    def _descriptor(self, path: Path) -> int:
        if self._file is None:
            self._file = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        return self._file


def _is_file(database: str | None) -> bool:
    return bool(database) and database != ":memory:" and not str(database).startswith("file:")


def _lock_path(database: str | None) -> Path | None:
    """The lock file of a database file; an in-memory database has only this process."""
    return Path(f"{database}.writer-lock") if _is_file(database) else None


def _checkpointer(database: str | None) -> Checkpointer | None:
    return Checkpointer(Path(database)) if database and _is_file(database) else None


def _create_engine(url: str) -> Engine:
    if not url.startswith("sqlite"):
        engine = create_engine(url, pool_pre_ping=True)
        event.listen(engine, "before_cursor_execute", _refuse_nul)
        return engine
    engine = create_engine(
        url,
        connect_args={"timeout": BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
        pool_size=8,
        max_overflow=16,
    )
    event.listen(engine, "connect", _sqlite_on_connect)
    event.listen(engine, "begin", _sqlite_on_begin)
    event.listen(engine, "before_cursor_execute", _refuse_nul)
    return engine


def _refuse_nul(
    _conn: Any, _cursor: Any, _statement: str, parameters: Any, _context: Any, many: bool
) -> None:
    for row in parameters if many else (parameters,):
        refuse_nul(row.values() if isinstance(row, dict) else row or ())


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Hand transaction control to SQLAlchemy's "begin" event (the pysqlite driver would
    # otherwise issue its own deferred BEGIN), then set the pragmas every connection needs.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_SECONDS * 1000}")
    cursor.close()
    leave_the_log_alone(dbapi_connection)


def _sqlite_on_begin(connection: Any) -> None:
    options = connection.get_execution_options()
    connection.exec_driver_sql("BEGIN" if options.get(_READ_ONLY, False) else "BEGIN IMMEDIATE")
