"""The migrations and the models describe the same schema, and migrating is repeatable."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from wavforge.db import migrate
from wavforge.db.database import Database
from wavforge.db.models import Base

from conftest import MakeServer


def test_migrations_match_the_models(make_server: MakeServer, tmp_path: Path) -> None:
    """On SQLite and on PostgreSQL: one set of migrations for both."""
    db = Database(make_server(tmp_path).settings().resolved_database_url)
    migrate.upgrade(db)
    migrate.upgrade(db)  # a second start changes nothing
    with db.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == []
    assert "alembic_version" in inspect(db.engine).get_table_names()
    db.dispose()


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'wal.db'}")
    with db.read() as session:
        assert session.connection().exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    db.dispose()


def test_processes_starting_together_migrate_once(make_server: MakeServer, tmp_path: Path) -> None:
    """Four processes race to migrate a new database; the lock makes them take turns."""
    server = make_server(tmp_path)
    starts = [
        subprocess.Popen(
            [sys.executable, "-m", "wavforge", "maintenance", "status"],
            env=server.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for _ in range(4)
    ]  # fmt: skip
    outputs = [process.communicate(timeout=60) for process in starts]
    assert [process.returncode for process in starts] == [0] * 4, outputs
    assert all(out.strip() == "maintenance off" for out, _ in outputs)
