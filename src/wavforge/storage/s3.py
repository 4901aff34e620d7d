"""An S3 bucket (AWS or any S3-compatible store) as storage.

Uploads go through boto3's managed transfer: large files are sent as a multipart upload
that is completed only after every part has arrived, and aborted on any error, so an object
appears whole or not at all. A process killed mid-upload leaves an unfinished multipart
upload, invisible to readers; :meth:`S3Storage.discard_partial` aborts those later.

Credentials come from boto3's usual chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``,
a profile, an instance role); wavforge never logs them.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from wavforge.audio.processes import alive
from wavforge.storage.base import Storage, StorageError, StorageMissing, checked_key

CHUNK = 256 * 1024
PART_BYTES = 16 * 1024 * 1024
_TRANSFER = TransferConfig(
    multipart_threshold=PART_BYTES, multipart_chunksize=PART_BYTES, max_concurrency=4
)
_MISSING = {"404", "NoSuchKey", "NotFound"}
COPY_PREFIX = "s3-copy-"  # local copies are named s3-copy-<pid>-<random>.part


class S3Storage(Storage):
    def __init__(
        self,
        bucket: str,
        prefix: str,
        scratch_dir: Path,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
    ) -> None:
        self.bucket = bucket
        self._prefix = f"{prefix}/" if prefix else ""
        self._scratch = scratch_dir
        _discard_dead_copies(scratch_dir)
        self._client: Any = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            config=Config(retries={"max_attempts": 5, "mode": "standard"}, max_pool_connections=32),
        )

    def check(self) -> None:
        """Fail at start, not on the first upload, when the bucket cannot be reached."""
        with _translated(f"reach bucket {self.bucket!r}"):
            self._client.head_bucket(Bucket=self.bucket)

    def put(self, key: str, source: Path) -> None:
        name = self._name(key)
        with _translated(f"upload {key!r}"):
            self._client.upload_file(str(source), self.bucket, name, Config=_TRANSFER)
        source.unlink()

    @contextlib.contextmanager
    def local_copy(self, key: str) -> Iterator[Path]:
        handle, raw = tempfile.mkstemp(
            dir=self._scratch, prefix=f"{COPY_PREFIX}{os.getpid()}-", suffix=".part"
        )
        os.close(handle)
        path = Path(raw)
        try:
            with _translated(f"download {key!r}"):
                self._client.download_file(self.bucket, self._name(key), raw)
            yield path
        finally:
            path.unlink(missing_ok=True)

    def open_range(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        span = f"bytes={start}-{'' if end is None else end}"
        with _translated(f"read {key!r}"):
            body = self._client.get_object(Bucket=self.bucket, Key=self._name(key), Range=span)[
                "Body"
            ]
        with contextlib.closing(body), _translated(f"read {key!r}"):
            yield from body.iter_chunks(CHUNK)

    def size(self, key: str) -> int | None:
        try:
            head = self._client.head_object(Bucket=self.bucket, Key=self._name(key))
        except ClientError as error:
            if _code(error) in _MISSING:
                return None
            raise StorageError(f"S3: could not stat {key!r}: {_code(error)}") from None
        except BotoCoreError as error:
            raise StorageError(f"S3: could not stat {key!r}: {type(error).__name__}") from None
        return int(head["ContentLength"])

    def delete(self, key: str) -> None:
        with _translated(f"delete {key!r}"):
            self._client.delete_object(Bucket=self.bucket, Key=self._name(key))

    def keys(self, prefix: str = "") -> Iterator[str]:
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self._prefix + prefix
        )
        with _translated("list objects"):
            for page in pages:
                for item in page.get("Contents", []):
                    yield item["Key"][len(self._prefix) :]

    def discard_partial(self, older_than_seconds: float) -> int:
        cutoff = datetime.now(UTC) - timedelta(seconds=older_than_seconds)
        removed = 0
        with _translated("abort unfinished uploads"):
            for upload in self._unfinished_uploads():
                if upload["Initiated"] < cutoff:
                    self._client.abort_multipart_upload(
                        Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
                    removed += 1
        return removed

    def unfinished_uploads(self) -> list[str]:
        """Keys of multipart uploads begun and neither completed nor aborted."""
        with _translated("list unfinished uploads"):
            return [item["Key"][len(self._prefix) :] for item in self._unfinished_uploads()]

    def _unfinished_uploads(self) -> Iterator[dict[str, Any]]:
        pages = self._client.get_paginator("list_multipart_uploads").paginate(
            Bucket=self.bucket, Prefix=self._prefix
        )
        for page in pages:
            yield from page.get("Uploads", [])

    def _name(self, key: str) -> str:
        return self._prefix + checked_key(key)


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", "unknown"))


@contextlib.contextmanager
def _translated(doing: str) -> Iterator[None]:
    """boto errors as :class:`StorageError`, naming the operation and S3's code only."""
    try:
        yield
    except ClientError as error:
        kind = StorageMissing if _code(error) in _MISSING else StorageError
        raise kind(f"S3: could not {doing}: {_code(error)}") from None
    except BotoCoreError as error:
        raise StorageError(f"S3: could not {doing}: {type(error).__name__}") from None


def _discard_dead_copies(scratch: Path) -> None:
    """Delete local copies (and boto3's partial downloads of them) left by processes of this
    machine that were killed mid-task."""
    for copy in scratch.glob(f"{COPY_PREFIX}*"):  # boto3 adds its own suffix while writing
        pid = copy.name.removeprefix(COPY_PREFIX).split("-", 1)[0]
        if pid.isdigit() and not alive(int(pid)):
            copy.unlink(missing_ok=True)
