"""Bring the schema to the newest Alembic revision; every command runs this on start."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Connection, text

from wavforge.db.database import Database

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(db: Database) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", db.url.replace("%", "%%"))
    return config


# Any constant will do: it names the lock every wavforge process takes while migrating.
_MIGRATION_LOCK = 0x7761_7666  # "wavf"


def upgrade(db: Database, to: str = "head") -> None:
    """Upgrade in one transaction that holds a lock, so processes starting together take turns.

    SQLite's ``BEGIN IMMEDIATE`` is that lock there; on PostgreSQL a transaction-scoped advisory
    lock is, and the second process then finds the schema current and changes nothing.
    """
    with _migrating(db) as config:
        command.upgrade(config, to)


def downgrade(db: Database, to: str) -> None:
    """Go back to revision ``to``, under the same lock (an operator's way back, and tests')."""
    with _migrating(db) as config:
        command.downgrade(config, to)


@contextmanager
def _migrating(db: Database) -> Iterator[Config]:
    config = alembic_config(db)
    with (
        db.engine.connect() as connection,
        _foreign_keys_checked_at_the_end(connection),  # before the transaction: see there
        connection.begin(),
    ):
        _lock(connection)
        config.attributes["connection"] = connection
        before = _revision(connection)
        yield config
        if _revision(connection) != before:  # a start with nothing to do scans nothing
            _check_foreign_keys(connection)


@contextmanager
def _foreign_keys_checked_at_the_end(connection: Connection) -> Iterator[None]:
    """SQLite changes a table by building a new one and dropping the old, and a drop that
    other tables' rows point at fails while foreign keys are enforced. So, as SQLite's own
    procedure for altering tables says, enforcement is off while migrating and the whole
    database is checked before the commit. The pragma only takes effect outside a
    transaction, hence on the driver's connection before the first BEGIN."""
    if connection.dialect.name != "sqlite":
        yield
        return
    driver = connection.connection.driver_connection
    assert driver is not None, "a checked-out connection has its driver's"
    driver.execute("PRAGMA foreign_keys=OFF")
    try:
        yield
    finally:
        driver.execute("PRAGMA foreign_keys=ON")


def _revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _check_foreign_keys(connection: Connection) -> None:
    if connection.dialect.name != "sqlite":
        return
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
    if broken:
        raise RuntimeError(f"migrating left rows whose foreign keys point nowhere: {broken[:5]}")


def _lock(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
