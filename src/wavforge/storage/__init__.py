"""File storage behind one interface; the backend is chosen by ``WAVFORGE_STORAGE_URL``."""

from __future__ import annotations

from wavforge.config import Settings
from wavforge.storage.base import Storage, StorageError
from wavforge.storage.local import LocalStorage

__all__ = ["LocalStorage", "Storage", "StorageError", "open_storage"]


def open_storage(settings: Settings) -> Storage:
    return LocalStorage(settings.storage_dir)
