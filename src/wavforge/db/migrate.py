"""Bring the schema to the newest Alembic revision; every command runs this on start."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from wavforge.db.database import Database

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(db: Database) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", db.url.replace("%", "%%"))
    return config


def upgrade(db: Database) -> None:
    """Upgrade in one connection, so SQLite's writer lock serialises racing starts."""
    config = alembic_config(db)
    with db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
