"""Bring the schema to the newest Alembic revision; every command runs this on start."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
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


def upgrade(db: Database) -> None:
    """Upgrade in one transaction that holds a lock, so processes starting together take turns.

    SQLite's ``BEGIN IMMEDIATE`` is that lock there; on PostgreSQL a transaction-scoped advisory
    lock is, and the second process then finds the schema current and changes nothing.
    """
    config = alembic_config(db)
    with db.engine.begin() as connection:
        _lock(connection)
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def _lock(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
