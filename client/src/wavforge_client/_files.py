"""Downloads land whole or not at all: where a file goes, and the temporary file it is
written to first. Shared by both clients (local file writes are quick enough to do inline
in a coroutine; the network is what the async client awaits).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
from collections.abc import Callable, Mapping
from email.message import Message
from pathlib import Path
from types import TracebackType
from typing import IO
from urllib.parse import unquote, urlsplit

from wavforge_client._errors import DownloadFailed

CHUNK = 256 * 1024

BytesCallback = Callable[[int, int | None], object]
"""Hears a download's bytes so far and its announced length (``None`` when unknown)."""


def server_filename(url: str, disposition: str | None) -> str:
    """The file name the server gives (``Content-Disposition``, else the URL's last part),
    reduced to a plain name so it cannot point anywhere else."""
    name = ""
    if disposition:
        header = Message()
        header["content-disposition"] = disposition
        name = header.get_filename() or ""
    name = name or unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    name = re.sub(r"[^\w.\- ]+", "_", Path(name).name).strip(" .")
    return name or "download.wav"


def target_path(
    path: str | os.PathLike[str], url: str, disposition: str | None, *, overwrite: bool
) -> Path:
    """``path`` itself, or the server's file name inside it when it is a folder: one that
    exists, or a path that ends with a separator (``"wavs/"``), which is made. A file that
    exists already is kept unless ``overwrite`` (``FileExistsError``)."""
    text = os.fspath(path)
    chosen = Path(text)
    if text.endswith(("/", os.sep)) or chosen.is_dir():
        chosen.mkdir(parents=True, exist_ok=True)
        chosen = chosen / server_filename(url, disposition)
    if chosen.exists() and not overwrite:
        raise _exists(chosen)
    return chosen


def _exists(path: Path) -> FileExistsError:
    return FileExistsError(errno.EEXIST, "file exists (pass overwrite=True)", str(path))


class AtomicFile:
    """A temporary file beside ``target``, renamed onto it by ``commit``; removed on error.

    A reader of ``target`` sees the old file or the complete new one, never a partial one,
    and an interrupted download leaves no ``.part`` file behind.
    """

    def __init__(
        self,
        target: Path,
        *,
        overwrite: bool = False,
        expected: int | None = None,
        on_bytes: BytesCallback | None = None,
    ) -> None:
        self.target = target
        self.overwrite = overwrite
        self.expected = expected
        self.written = 0
        self._on_bytes = on_bytes
        # Opened like any new file (mode from the umask, unlike mkstemp's 0600); "x" refuses
        # to follow a link or reuse a name someone else made.
        self._scratch = target.with_name(f".{target.name}.{secrets.token_hex(6)}.part")
        self._out: IO[bytes] = self._scratch.open("xb")

    def write(self, chunk: bytes) -> None:
        self._out.write(chunk)
        self.written += len(chunk)
        if self._on_bytes is not None:
            self._on_bytes(self.written, self.expected)

    def commit(self) -> Path:
        """Flush, check the length the server announced, and move into place."""
        self._out.flush()
        os.fsync(self._out.fileno())
        self._out.close()
        if self.expected is not None and self.written != self.expected:
            raise DownloadFailed(
                f"{self.target.name}: got {self.written} of {self.expected} bytes;"
                " nothing was saved"
            )
        if self.overwrite:
            self._scratch.replace(self.target)
        else:
            _place_new(self._scratch, self.target)
        return self.target

    def __enter__(self) -> AtomicFile:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._out.close()
        with contextlib.suppress(FileNotFoundError):
            self._scratch.unlink()


def _place_new(scratch: Path, target: Path) -> None:
    """Move ``scratch`` to ``target`` only if nothing is there: a file that appeared during
    the download (another run, another program) is never replaced."""
    try:
        os.link(scratch, target)  # fails if target exists, atomically
    except FileExistsError:
        raise _exists(target) from None
    except OSError:  # a file system without hard links: check, then move
        if target.exists():
            raise _exists(target) from None
        scratch.replace(target)
        return
    scratch.unlink()


def expected_length(headers: Mapping[str, str]) -> int | None:
    """The byte count to check a download against (unknowable when the body was encoded)."""
    if headers.get("content-encoding", "identity") != "identity":
        return None
    try:
        return int(headers["content-length"])
    except (KeyError, ValueError):
        return None
