"""One suite every storage backend must pass (only the local directory exists so far)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from wavforge.storage import LocalStorage, Storage, StorageError


@pytest.fixture(params=["local"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    yield LocalStorage(tmp_path / "store")


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
