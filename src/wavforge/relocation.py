"""Moving the embedded mode to scale-out: every row into PostgreSQL, every file into S3.

The target database is migrated to the current schema and must hold no account yet; rows go
across table by table in the order their foreign keys need, with the link-signing key among
them, so download links made before the move still verify. Files are copied, never moved:
the embedded data directory stays as it was until the operator removes it. Run it with the
server stopped (a row written during the copy could be missed).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Connection, func, select

from wavforge.config import Settings
from wavforge.db import migrate
from wavforge.db.database import Database
from wavforge.db.models import Account, Base
from wavforge.storage import open_storage

__all__ = ["Moved", "RelocationRefused", "relocate"]

BATCH = 500  # rows per INSERT round trip


class RelocationRefused(RuntimeError):
    """The move cannot start (the message says why); nothing was written."""


@dataclass(frozen=True)
class Moved:
    rows: dict[str, int]
    files: int


def relocate(
    source: Settings, target: Settings, progress: Callable[[str], None] = lambda _: None
) -> Moved:
    """Copy ``source``'s database and files into ``target``'s."""
    if source.sqlite_path is None:
        raise RelocationRefused("the data to move must be the embedded SQLite database")
    if target.sqlite_path is not None:
        raise RelocationRefused("the target database must be a database server (PostgreSQL)")
    if not target.uses_s3 and target.storage_dir == source.storage_dir:
        raise RelocationRefused("the target storage is the storage being moved")
    old, new = Database(source.resolved_database_url), Database(target.resolved_database_url)
    try:
        migrate.upgrade(new)
        with new.engine.connect() as connection:
            if connection.scalar(select(func.count()).select_from(Account.__table__)):
                raise RelocationRefused("the target database already holds accounts")
        rows = _copy_rows(old, new, progress)
    finally:
        old.dispose()
        new.dispose()
    return Moved(rows, _copy_files(source, target, progress))


def _copy_rows(old: Database, new: Database, progress: Callable[[str], None]) -> dict[str, int]:
    """Every table in foreign-key order, in one transaction on the target."""
    counts: dict[str, int] = {}
    with old.engine.connect() as reading, new.engine.begin() as writing:
        for table in Base.metadata.sorted_tables:
            counts[table.name] = 0
            streamed = reading.execution_options(yield_per=BATCH).execute(select(table))
            for batch in streamed.mappings().partitions():  # a batch in memory at a time
                writing.execute(table.insert(), [dict(row) for row in batch])
                counts[table.name] += len(batch)
            progress(f"{table.name}: {counts[table.name]} rows")
            for column in table.primary_key.columns:
                if column.autoincrement is True:  # the next id continues after the copied ones
                    _continue_sequence(writing, table.name, column)
    return counts


def _continue_sequence(writing: Connection, table: str, column: Column[Any]) -> None:
    highest = writing.scalar(select(func.max(column)))
    if highest is not None:
        sequence = func.pg_get_serial_sequence(table, column.name)
        writing.execute(select(func.setval(sequence, highest)))


def _copy_files(source: Settings, target: Settings, progress: Callable[[str], None]) -> int:
    """Every stored file, under the same key; a store's ``put`` takes a file it may move, so
    it gets a copy in the target's scratch folder."""
    reading, writing = open_storage(source), open_storage(target)
    target.scratch_dir.mkdir(parents=True, exist_ok=True)
    copied = 0
    for key in reading.keys(""):
        with reading.local_copy(key) as path:
            staged = target.scratch_dir / f"relocate-{copied}.part"
            shutil.copyfile(path, staged)
            writing.put(key, staged)
        copied += 1
    progress(f"files: {copied}")
    return copied
