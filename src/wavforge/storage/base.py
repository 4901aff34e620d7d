"""The storage interface: whole files in, whole files out, under string keys.

A backend never exposes a half-written file: :meth:`Storage.put` takes a complete local file
and makes it appear under its key in one step (a rename on a local disk; a completed upload
elsewhere).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path, PurePosixPath


class StorageError(Exception):
    """A backend failed; the message is safe to log but is not shown to clients."""


class StorageMissing(StorageError):
    """The object is not there: trying again will not bring it back."""


def checked_key(key: str) -> str:
    """``key`` if it names an object inside the store; keys never climb out of it."""
    if not key or key.startswith("/") or ".." in PurePosixPath(key).parts:
        raise StorageError(f"invalid storage key {key!r}")
    return key


class Storage(ABC):
    @abstractmethod
    def put(self, key: str, source: Path) -> None:
        """Move the complete file ``source`` under ``key``, replacing what was there."""

    @abstractmethod
    def local_copy(self, key: str) -> AbstractContextManager[Path]:
        """A readable local path holding the object's bytes, for as long as the context lasts."""

    @abstractmethod
    def open_range(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """The object's bytes from ``start`` up to and including ``end``, in chunks."""

    @abstractmethod
    def size(self, key: str) -> int | None:
        """Size in bytes, or None when there is no such object."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object; removing a missing object is not an error."""

    @abstractmethod
    def keys(self, prefix: str = "") -> Iterator[str]:
        """Every stored key that starts with ``prefix``."""

    @abstractmethod
    def discard_partial(self, older_than_seconds: float) -> int:
        """Remove what interrupted writes left behind (staged copies, unfinished multipart
        uploads) once older than ``older_than_seconds``; returns how many were removed."""
