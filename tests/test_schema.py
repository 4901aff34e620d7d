"""The migrations and the models describe the same schema, and migrating is repeatable."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, func, inspect, select, update

from wavforge.db import migrate
from wavforge.db.database import Database
from wavforge.db.models import Base, Delivery, WavTask

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


def test_live_records_keep_their_format_across_0009(
    make_server: MakeServer, tmp_path: Path
) -> None:
    """A database with conversions, and deliveries pointing at them, goes to 0009 and back:
    every row stays, a live record keeps the format it was asked for, and going back leaves
    one live record per track, its default-format one."""
    db = Database(make_server(tmp_path).settings().resolved_database_url)
    migrate.upgrade(db, to="0008")  # a new database, made as 0008 made it
    _fill_at_0008(db)
    migrate.upgrade(db)
    assert _live(db) == {
        "default-a": ("a", ""),
        "failed-a": (None, ""),  # no longer live: its key is never read
        "24-b": ("b", '{"bit_depth":24}'),
    }
    with db.write() as session:  # what 0009 allows: a second live format on track a
        session.execute(
            update(WavTask)
            .where(WavTask.id == "failed-a")
            .values(live_track_id="a", format_key='{"bit_depth":24}')
        )
    migrate.downgrade(db, "0008")
    with db.read() as session:
        tasks = WavTask.__table__.c
        rows = session.execute(select(tasks.id, tasks.live_track_id))
        live = {task: track for task, track in rows}
        assert live == {"default-a": "a", "failed-a": None, "24-b": "b"}
        assert session.scalar(select(func.count()).select_from(Delivery)) == 3
    migrate.upgrade(db)
    db.dispose()


def _live(db: Database) -> dict[str, tuple[str | None, str]]:
    with db.read() as session:
        rows = session.execute(select(WavTask.id, WavTask.live_track_id, WavTask.format_key))
        return {task: (live, key) for task, live, key in rows}


def _fill_at_0008(db: Database) -> None:
    """Tracks a and b: a's live default record and failed 24-bit one, b's live 24-bit one;
    a delivery for each record."""
    rows: dict[str, list[dict[str, object]]] = {
        "accounts": [
            {"id": "acct", "name": "n", "credits": 0, "is_admin": False, "webhook_secret": "s"}
        ],
        "music_tasks": [{"id": "m", "account_id": "acct", "kind": "import", "status": "S"}],
        "tracks": [_track(track) for track in ("a", "b")],
        "wav_tasks": [
            _task("default-a", "a", live=True, options={}),
            _task("failed-a", "a", live=False, options={"bit_depth": 24}),
            _task("24-b", "b", live=True, options={"bit_depth": 24}),
        ],
        "deliveries": [_delivery(task) for task in ("default-a", "failed-a", "24-b")],
    }
    common = {"created_at": datetime(2026, 11, 22, 1, 2, 3), "params": {}}
    with db.engine.begin() as connection:
        tables = MetaData()
        tables.reflect(connection)  # the tables as 0008 made them
        for name, values in rows.items():
            table = tables.tables[name]
            fitted = [{k: v for k, v in (common | row).items() if k in table.c} for row in values]
            connection.execute(table.insert(), fitted)


def _track(track_id: str) -> dict[str, object]:
    texts = ("title", "tags", "prompt", "source_key", "source_name", "source_format")
    return dict.fromkeys((*texts, "source_codec"), "x") | {
        "id": track_id,
        "music_task_id": "m",
        "account_id": "acct",
        "position": 0,
        "duration": 1.0,
        "sample_rate": 44100,
        "channels": 2,
    }


def _task(task_id: str, track_id: str, live: bool, options: dict[str, object]) -> dict[str, object]:
    return {
        "id": task_id,
        "account_id": "acct",
        "track_id": track_id,
        "live_track_id": track_id if live else None,
        "dialect": "suno",
        "options": options,
        "status": "SUCCESS" if live else "GENERATE_WAV_FAILED",
        "progress": 1.0,
        "credits_charged": 1,
        "attempts": 1,
    }


def _delivery(task_id: str) -> dict[str, object]:
    return {
        "id": f"d-{task_id}",
        "wav_task_id": task_id,
        "account_id": "acct",
        "url": "http://127.0.0.1/cb",
        "payload": {},
        "status": "DELIVERED",
        "attempts": 1,
    }


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
