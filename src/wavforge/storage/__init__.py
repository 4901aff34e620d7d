"""File storage behind one interface; the backend is chosen by ``WAVFORGE_STORAGE_URL``."""

from __future__ import annotations

from wavforge.config import Settings
from wavforge.storage.base import Storage, StorageError, StorageMissing
from wavforge.storage.local import LocalStorage

__all__ = ["LocalStorage", "Storage", "StorageError", "StorageMissing", "open_storage"]


def open_storage(settings: Settings) -> Storage:
    """The configured backend, checked reachable (an S3 bucket is probed once here)."""
    if settings.uses_s3:
        from wavforge.storage.s3 import S3Storage  # boto3 loads only when S3 is used

        bucket, prefix = settings.s3_location
        endpoint = str(settings.s3_endpoint_url) if settings.s3_endpoint_url else None
        store = S3Storage(
            bucket, prefix, settings.scratch_dir, endpoint_url=endpoint, region=settings.s3_region
        )
        store.check()
        return store
    return LocalStorage(settings.storage_dir)
