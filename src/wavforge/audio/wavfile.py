"""A streaming WAV writer: PCM, extensible, IEEE float, LIST/INFO tags and RF64.

The header is written first with placeholder sizes, sample data is streamed straight to disk,
and the sizes are patched in at the end, so memory use is independent of track length. The
layout is the simplest one that describes the format correctly:

* ``WAVE_FORMAT_PCM`` with the classic 16-byte ``fmt`` for integer samples of at most 16 bits
  on one or two channels — the 44-byte header every tool (and Python's ``wave``) reads;
* ``WAVE_FORMAT_EXTENSIBLE`` when the format needs it: more than 16 bits or more than two
  channels (the channel mask says which speaker each channel feeds);
* ``WAVE_FORMAT_IEEE_FLOAT`` (extensible beyond two channels) plus the ``fact`` chunk that
  non-PCM formats require;
* a ``LIST/INFO`` chunk with the source's tags (UTF-8), before ``data`` so readers that stop
  at ``data`` still see it;
* RF64 (EBU Tech 3306) when the data passes the threshold: the 32-bit sizes are set to
  0xFFFFFFFF and the real ones go in a ``ds64`` chunk. Space for it is reserved as a ``JUNK``
  chunk whenever the output might get that large; if a file outgrows a header without the
  reservation (its duration was misreported), the data is moved once to make room.
"""

from __future__ import annotations

import contextlib
import errno
import os
import struct
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from wavforge.audio.errors import ConversionFailed, LimitExceeded
from wavforge.audio.formats import OutputFormat
from wavforge.audio.options import RIFF_DATA_LIMIT

__all__ = ["INFO_TAGS", "WavWriter", "info_chunk"]

_PCM, _IEEE_FLOAT, _EXTENSIBLE = 0x0001, 0x0003, 0xFFFE
_GUID_TAIL = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
_DS64_BODY = 28  # riff size, data size, sample count (3 x u64), table length (u32)
_NO_SIZE = 0xFFFFFFFF
_BUFFER = 1 << 20
_COPY_CHUNK = 1 << 26
# Source tag -> INFO chunk id (title, artist, album, genre, date, comment).
INFO_TAGS = {
    "title": b"INAM",
    "artist": b"IART",
    "album": b"IPRD",
    "genre": b"IGNR",
    "date": b"ICRD",
    "comment": b"ICMT",
}


class WavWriter:
    """Stream samples into ``path``; use as a context manager so failures remove the file.

    On a clean exit of the ``with`` block the header gets its final sizes; if the block
    raises, the partial file is deleted so no truncated WAV is ever left behind.
    """

    def __init__(
        self,
        path: Path,
        fmt: OutputFormat,
        *,
        tags: Mapping[str, str] | None = None,
        max_file_bytes: int | None = None,
        rf64_threshold: int = RIFF_DATA_LIMIT,
        reserve_rf64: bool = False,
    ) -> None:
        self.path = Path(path)
        self.format = fmt
        self.data_bytes = 0
        self._info = info_chunk(tags or {})
        self._max_file_bytes = max_file_bytes
        self._threshold = min(rf64_threshold, RIFF_DATA_LIMIT)
        self._reserve = reserve_rf64
        self._header_size: int | None = None
        self._file: BinaryIO | None = None
        self._created = False  # only ever delete a file this writer created

    @property
    def header_size(self) -> int:
        """Bytes before the first sample."""
        if self._header_size is None:
            self._header_size = len(self._header(0, rf64=False))
        return self._header_size

    @property
    def file_size(self) -> int:
        """Size of the complete WAV file in bytes."""
        return self.header_size + self.data_bytes + (self.data_bytes & 1)

    @property
    def frames(self) -> int:
        """Sample frames written so far."""
        return self.data_bytes // self.format.block_align

    def __enter__(self) -> WavWriter:
        if self.path.exists() and not self.path.is_file():
            # Never write into (and later unlink) a device, FIFO or directory by mistake.
            raise ConversionFailed("output path is not a regular file")
        try:
            self._file = _open_empty(self.path)
            self._created = True
            write_all(self._file, self._header(0, rf64=False))  # placeholder, patched on exit
        except OSError as exc:
            self.abort()
            raise write_failed(exc) from None
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self._finish()
        else:
            self.abort()

    def write(self, data: bytes | memoryview) -> None:
        """Append sample data, refusing to grow past the operator's output limit."""
        self._admit(len(data))
        assert self._file is not None, "WavWriter used outside its with-block"
        try:
            write_all(self._file, data)
        except OSError as exc:
            raise write_failed(exc) from None
        self.data_bytes += len(data)

    def adopt(self, size: int) -> None:
        """Count ``size`` bytes that another process wrote right after the current end.

        Parallel parts write their samples straight into this file at the offset they will
        end up at (see ``segments``), which saves copying them once more at the end.
        """
        assert self._file is not None, "WavWriter used outside its with-block"
        self._admit(size)
        self.data_bytes += size
        try:
            self._file.seek(self.header_size + self.data_bytes)
        except OSError as exc:
            raise write_failed(exc) from None

    def rewind(self) -> None:
        """Drop every sample written so far, keeping the header, to write them again."""
        assert self._file is not None, "WavWriter used outside its with-block"
        try:
            self._file.seek(self.header_size)
            self._file.truncate()
        except OSError as exc:
            raise write_failed(exc) from None
        self.data_bytes = 0

    def abort(self) -> None:
        """Close and delete the partial output; never raises, it runs while handling errors."""
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None
        if self._created:
            with contextlib.suppress(OSError):
                self.path.unlink(missing_ok=True)

    def _admit(self, size: int) -> None:
        limit = self._max_file_bytes
        if limit is not None and self.header_size + self.data_bytes + size > limit:
            raise LimitExceeded(f"output would exceed the limit of {limit:,} bytes")

    def _finish(self) -> None:
        """Pad, patch the header with the final sizes and close; on failure delete the file."""
        assert self._file is not None, "WavWriter finished twice"
        rf64 = self.data_bytes > self._threshold
        try:
            if self.data_bytes & 1:
                write_all(self._file, b"\0")  # RIFF chunks are word-aligned
            if rf64 and not self._reserve:
                self._make_room_for_ds64()
            self._file.seek(0)
            write_all(self._file, self._header(self.data_bytes, rf64=rf64))
            self._file.close()
            self._file = None
        except OSError as exc:
            self.abort()
            raise write_failed(exc) from None

    def _make_room_for_ds64(self) -> None:
        """Rewrite the file with a reserved ``ds64`` slot: rare, costs one copy of the data."""
        assert self._file is not None
        self._file.flush()
        old_header = self.header_size
        self._reserve, self._header_size = True, None
        moved = self.path.with_name(self.path.name + ".rf64")
        with open(moved, "wb") as target:
            target.write(self._header(0, rf64=False))
            target.flush()
            size = self.data_bytes + (self.data_bytes & 1)
            with open(self.path, "rb") as source:
                source.seek(old_header)
                _copy_range(source.fileno(), target.fileno(), size)
        self._file.close()
        os.replace(moved, self.path)
        self._file = open(self.path, "r+b")  # noqa: SIM115

    def _header(self, data_bytes: int, *, rf64: bool) -> bytes:
        """Everything before the samples, for the given data size."""
        fmt = self.format
        frames = data_bytes // fmt.block_align
        chunks = [_chunk(b"fmt ", _fmt_body(fmt))]
        if fmt.floating:
            chunks.append(_chunk(b"fact", struct.pack("<I", _NO_SIZE if rf64 else frames)))
        chunks.append(self._info)
        body = b"".join(chunks)
        junk = b""
        if self._reserve:
            header_len = 12 + 8 + _DS64_BODY + len(body) + 8
            riff_size = header_len - 8 + data_bytes + (data_bytes & 1)
            kind = b"ds64" if rf64 else b"JUNK"
            payload = struct.pack("<QQQI", riff_size, data_bytes, frames, 0) if rf64 else b""
            junk = kind + struct.pack("<I", _DS64_BODY) + payload.ljust(_DS64_BODY, b"\0")
        riff_size = 4 + len(junk) + len(body) + 8 + data_bytes + (data_bytes & 1)
        data_size = data_bytes
        if rf64:
            riff_size = data_size = _NO_SIZE
        riff = b"RF64" if rf64 else b"RIFF"
        return (
            riff
            + struct.pack("<I", riff_size)
            + b"WAVE"
            + junk
            + body
            + b"data"
            + struct.pack("<I", data_size)
        )


def _open_empty(path: Path) -> BinaryIO:
    """Open ``path`` for writing from the start, emptied, without ``O_TRUNC`` when already empty.

    ext4 treats a truncated file that is then rewritten as an atomic-replace pattern and starts
    writing it back on every ``close`` (``auto_da_alloc``); for a scratch file created empty
    (``wavforge convert-file`` makes one) that cost tens of milliseconds per part for nothing.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        if os.fstat(fd).st_size:
            os.ftruncate(fd, 0)
        # Unbuffered: samples arrive in batches of a few hundred KiB, so a buffer would only
        # add a copy of every byte.
        return os.fdopen(fd, "wb", buffering=0)
    except BaseException:
        os.close(fd)
        raise


def _fmt_body(fmt: OutputFormat) -> bytes:
    """The ``fmt`` chunk: classic PCM, IEEE float (cbSize 0) or WAVE_FORMAT_EXTENSIBLE."""
    tag = _IEEE_FLOAT if fmt.floating else _PCM
    extensible = fmt.channels > 2 or (fmt.bits > 16 and not fmt.floating)
    common = struct.pack(
        "<HHIIHH",
        _EXTENSIBLE if extensible else tag,
        fmt.channels,
        fmt.sample_rate,
        fmt.sample_rate * fmt.block_align,
        fmt.block_align,
        fmt.bits,
    )
    if extensible:
        guid = struct.pack("<H", tag) + _GUID_TAIL
        return common + struct.pack("<HHI", 22, fmt.bits, fmt.channel_mask) + guid
    if fmt.floating:
        return common + struct.pack("<H", 0)
    return common


def info_chunk(tags: Mapping[str, str]) -> bytes:
    """A ``LIST/INFO`` chunk for the known tags (UTF-8, NUL-terminated), or nothing."""
    entries = [
        _chunk(INFO_TAGS[name], value.encode("utf-8") + b"\0")
        for name, value in tags.items()
        if name in INFO_TAGS and value
    ]
    if not entries:
        return b""
    return _chunk(b"LIST", b"INFO" + b"".join(entries))


def _chunk(kind: bytes, body: bytes) -> bytes:
    """One RIFF chunk, padded to an even length as RIFF requires."""
    return kind + struct.pack("<I", len(body)) + body + b"\0" * (len(body) & 1)


def _copy_range(source: int, target: int, size: int) -> None:
    """Copy ``size`` bytes between file descriptors at their current offsets.

    ``copy_file_range`` keeps the bytes inside the kernel; file systems that refuse it get a
    plain read/write loop.
    """
    while size > 0:
        try:
            copied = os.copy_file_range(source, target, min(size, _COPY_CHUNK))
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
                raise
            copied = os.write(target, os.read(source, min(size, _BUFFER)))
        if copied == 0:
            raise OSError(errno.EIO, "unexpected end of file while copying")
        size -= copied


def write_all(file: BinaryIO, data: bytes | memoryview) -> None:
    """Write everything: a raw file may accept less than asked (a signal, a full disk)."""
    view = memoryview(data).cast("B")
    while view:
        written = file.write(view)
        if not written:
            raise OSError(errno.EIO, "write made no progress")
        view = view[written:]


def write_all_at(fd: int, data: bytes | memoryview, offset: int) -> None:
    """``pwrite`` everything at ``offset``, which may take several calls."""
    view = memoryview(data).cast("B")
    while view:
        written = os.pwrite(fd, view, offset)
        if not written:
            raise OSError(errno.EIO, "write made no progress")
        view, offset = view[written:], offset + written


def write_failed(exc: OSError) -> ConversionFailed:
    """One-line message from an OS error without the file name (it is a server-side path)."""
    return ConversionFailed(f"could not write output ({exc.strerror or 'I/O error'})")
