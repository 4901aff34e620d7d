"""A consistent copy of the embedded mode, taken while the server runs.

The copy is a data directory of its own: ``WAVFORGE_DATA_DIR=<copy> wavforge serve`` runs
from it, which is all a restore is. The database goes first, through SQLite's online backup
(a snapshot of one moment, whatever the writers are doing), then the stored files. A WAV
finished between the two is copied without a record (the purge's ``--orphans`` removes it);
a file deleted between the two is recorded but missing, and answers like an expired one.
The queue is not copied: a restored server finds tasks that were never queued, or whose
lease ran out, and queues them again.
"""

from __future__ import annotations

import shutil
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from wavforge.config import Settings

__all__ = ["Backup", "BackupRefused", "back_up"]

DATABASE_NAME = "wavforge.db"


class BackupRefused(RuntimeError):
    """This deployment or target cannot be backed up this way; the message says why."""


@dataclass(frozen=True)
class Backup:
    target: Path
    database_bytes: int
    files: int
    file_bytes: int


def back_up(settings: Settings, target: Path) -> Backup:
    """Copy the embedded database and the stored files into ``target`` (new or empty)."""
    database = _embedded_database(settings)
    if settings.uses_s3:
        raise BackupRefused("files live in S3: back up the bucket with the S3 tools instead")
    target = target.expanduser().resolve()
    if target.exists() and any(target.iterdir()):
        raise BackupRefused(f"{target} is not empty; name a new folder")
    if target == settings.data_dir or settings.data_dir in target.parents:
        raise BackupRefused("the backup must not be inside the data directory it copies")
    target.mkdir(parents=True, exist_ok=True)
    _copy_database(database, target / DATABASE_NAME)
    files, size = _copy_files(settings.storage_dir, target / "files")
    return Backup(target, (target / DATABASE_NAME).stat().st_size, files, size)


def _embedded_database(settings: Settings) -> Path:
    path = settings.sqlite_path
    if path is None:
        raise BackupRefused(
            "the database is a server: back it up with its own tools (pg_dump), "
            "see docs/operations.md"
        )
    if not path.exists():
        raise BackupRefused(f"no database at {path}: nothing to back up")
    return path


def _copy_database(source: Path, target: Path) -> None:
    """SQLite's online backup: the pages of one consistent moment, WAL included."""
    with closing(sqlite3.connect(source)) as reading, closing(sqlite3.connect(target)) as writing:
        reading.backup(writing)


def _copy_files(source: Path, target: Path) -> tuple[int, int]:
    """Every stored file, with its folder layout; (count, bytes)."""
    count = size = 0
    if not source.exists():
        target.mkdir(parents=True)
        return count, size
    for path in sorted(source.rglob("*")):
        if not path.is_file() or path.is_symlink():
            continue
        copied = target / path.relative_to(source)
        copied.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, copied)
        count, size = count + 1, size + copied.stat().st_size
    return count, size
