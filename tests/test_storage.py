"""One suite every storage backend must pass: a local directory, and S3 (moto's emulator)."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from wavforge.storage import LocalStorage, Storage, StorageError
from wavforge.storage.s3 import S3Storage

from support.deployments import S3Emulator


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    if request.param == "local":
        yield LocalStorage(tmp_path / "store")
        return
    emulator: S3Emulator = request.getfixturevalue("s3_emulator")
    bucket = f"store-{secrets.token_hex(6)}"
    emulator.client().create_bucket(Bucket=bucket)
    store = S3Storage(bucket, "some/prefix", tmp_path, endpoint_url=emulator.url)
    store.check()
    yield store


def staged(tmp_path: Path, content: bytes) -> Path:
    path = tmp_path / "staged.bin"
    path.write_bytes(content)
    return path


def test_put_then_read_back(storage: Storage, tmp_path: Path) -> None:
    storage.put("wav/a.wav", staged(tmp_path, b"0123456789"))
    assert storage.size("wav/a.wav") == 10
    assert b"".join(storage.open_range("wav/a.wav")) == b"0123456789"
    assert b"".join(storage.open_range("wav/a.wav", 2, 4)) == b"234"
    with storage.local_copy("wav/a.wav") as path:
        assert path.read_bytes() == b"0123456789"
    assert list(storage.keys("wav/")) == ["wav/a.wav"]


def test_put_moves_the_file_and_replaces_whole(storage: Storage, tmp_path: Path) -> None:
    first = staged(tmp_path, b"old")
    storage.put("k", first)
    assert not first.exists()
    storage.put("k", staged(tmp_path, b"new content"))
    assert b"".join(storage.open_range("k")) == b"new content"


def test_missing_objects(storage: Storage) -> None:
    assert storage.size("nothing") is None
    storage.delete("nothing")  # not an error
    with pytest.raises(StorageError), storage.local_copy("nothing"):
        pass


@pytest.mark.parametrize("key", ["../escape", "/etc/passwd", "", "a/../../b"])
def test_keys_cannot_leave_the_store(storage: Storage, tmp_path: Path, key: str) -> None:
    with pytest.raises(StorageError):
        storage.put(key, staged(tmp_path, b"x"))


def test_delete(storage: Storage, tmp_path: Path) -> None:
    storage.put("sources/x.mp3", staged(tmp_path, b"x"))
    storage.delete("sources/x.mp3")
    assert storage.size("sources/x.mp3") is None and list(storage.keys()) == []


def test_large_files_arrive_whole(storage: Storage, tmp_path: Path) -> None:
    """Big enough for a multipart upload on S3; ranges across part boundaries read back."""
    content = secrets.token_bytes(40 * 1024 * 1024 + 123)
    storage.put("wav/big.wav", staged(tmp_path, content))
    assert storage.size("wav/big.wav") == len(content)
    boundary = 16 * 1024 * 1024
    middle = b"".join(storage.open_range("wav/big.wav", boundary - 5, boundary + 4))
    assert middle == content[boundary - 5 : boundary + 5]
    with storage.local_copy("wav/big.wav") as path:
        assert path.read_bytes() == content
    assert not list(tmp_path.glob("s3-*"))  # the local copy is gone with its context


def test_interrupted_writes_are_discarded(storage: Storage, tmp_path: Path) -> None:
    """What a killed writer leaves (a staged copy, an unfinished multipart upload) is removed
    once old enough, and finished objects are left alone."""
    storage.put("wav/kept.wav", staged(tmp_path, b"whole"))
    leave_an_interrupted_write(storage)
    if isinstance(storage, LocalStorage):
        # moto reports every multipart upload as begun on 2010-11-10, so only the local
        # backend can show that a write still in progress is left alone.
        assert storage.discard_partial(older_than_seconds=3600) == 0
    assert storage.discard_partial(older_than_seconds=0) == 1
    assert list(storage.keys()) == ["wav/kept.wav"]
    if isinstance(storage, S3Storage):
        assert storage.unfinished_uploads() == []


def leave_an_interrupted_write(storage: Storage) -> None:
    if isinstance(storage, S3Storage):
        client = storage._client
        upload = client.create_multipart_upload(Bucket=storage.bucket, Key="some/prefix/wav/x.wav")
        client.upload_part(
            Bucket=storage.bucket, Key="some/prefix/wav/x.wav", PartNumber=1,
            UploadId=upload["UploadId"], Body=b"half",
        )  # fmt: skip
        return
    assert isinstance(storage, LocalStorage)
    (storage.root / ".staging" / "dead-copy").write_bytes(b"half")
    old = time.time() - 10
    os.utime(storage.root / ".staging" / "dead-copy", (old, old))


def test_errors_name_the_operation_not_the_credentials(
    tmp_path: Path, s3_emulator: S3Emulator
) -> None:
    store = S3Storage("no-such-bucket", "", tmp_path, endpoint_url=s3_emulator.url)
    with pytest.raises(StorageError, match="could not reach bucket 'no-such-bucket'") as error:
        store.check()
    assert "testing" not in str(error.value)
