"""A local directory as storage: keys are relative paths under one root."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from wavforge.storage.base import Storage, StorageError, StorageMissing, checked_key

CHUNK = 256 * 1024
STAGING = ".staging"


class LocalStorage(Storage):
    def __init__(self, root: Path) -> None:
        self.root = root
        (root / STAGING).mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        """The file for ``key``; refuses keys that would leave the root."""
        if checked_key(key).startswith(STAGING):
            raise StorageError(f"invalid storage key {key!r}")
        return self.root / key

    def put(self, key: str, source: Path) -> None:
        target = self.path(key)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            self._move(source, target)
        except OSError as error:  # a full disk, a folder that is not one: the store failed
            raise StorageError(f"could not store {key!r}: {error.strerror}") from None

    def _move(self, source: Path, target: Path) -> None:
        try:
            os.replace(source, target)
        except OSError:
            # Another file system: copy beside the target first, so the final step is a rename.
            staged = self.root / STAGING / uuid.uuid4().hex
            shutil.copyfile(source, staged)
            os.replace(staged, target)
            source.unlink()

    @contextlib.contextmanager
    def local_copy(self, key: str) -> Iterator[Path]:
        path = self.path(key)
        if not path.is_file():
            raise StorageMissing(f"no stored object {key!r}")
        yield path

    def open_range(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        with self.path(key).open("rb") as handle:
            handle.seek(start)
            remaining = None if end is None else end - start + 1
            while remaining is None or remaining > 0:
                chunk = handle.read(CHUNK if remaining is None else min(CHUNK, remaining))
                if not chunk:
                    return
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk

    def size(self, key: str) -> int | None:
        try:
            return self.path(key).stat().st_size
        except FileNotFoundError:
            return None

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def keys(self, prefix: str = "") -> Iterator[str]:
        for path in sorted(self.root.rglob("*")):
            key = path.relative_to(self.root).as_posix()
            if path.is_file() and not key.startswith(STAGING) and key.startswith(prefix):
                yield key

    def discard_partial(self, older_than_seconds: float) -> int:
        """Copies staged by a process that died before its final rename."""
        cutoff = time.time() - older_than_seconds
        removed = 0
        for staged in (self.root / STAGING).iterdir():
            with contextlib.suppress(FileNotFoundError):
                if staged.stat().st_mtime < cutoff:
                    staged.unlink()
                    removed += 1
        return removed
