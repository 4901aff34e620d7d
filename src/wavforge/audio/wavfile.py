"""A minimal streaming writer for 16-bit PCM WAV files.

The standard library ``wave`` module wants the frame count up front or rewrites the header on
close in ways we do not control; this writer emits the canonical 44-byte header (WAVE_FORMAT_PCM,
16-byte fmt chunk) that every player and ``wave`` itself accept, streams sample data straight to
disk, then seeks back to patch the two size fields. Memory use is independent of track length.
"""

from __future__ import annotations

import contextlib
import struct
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from wavforge.audio.errors import ConversionFailed

__all__ = ["HEADER_SIZE", "MAX_DATA_BYTES", "WavWriter"]

HEADER_SIZE = 44
SAMPLE_WIDTH = 2  # bytes: 16-bit PCM only
# The RIFF size field is 32 bits and covers everything after itself (36 header bytes + data).
MAX_DATA_BYTES = 0xFFFFFFFF - (HEADER_SIZE - 8)
_WAVE_FORMAT_PCM = 1
_HEADER = struct.Struct("<4sI4s4sIHHIIHH4sI")
_BUFFER = 1 << 20


class WavWriter:
    """Stream s16le PCM into ``path``; use as a context manager so failures remove the file.

    On a clean exit of the ``with`` block the header is patched with the final sizes; if the
    block raises, the partial file is deleted so no truncated WAV is ever left behind.
    """

    def __init__(self, path: Path, *, max_data_bytes: int = MAX_DATA_BYTES) -> None:
        self.path = Path(path)
        self.data_bytes = 0
        self.sample_rate = 0
        self.channels = 0
        self._limit = min(max_data_bytes, MAX_DATA_BYTES)
        self._file: BinaryIO | None = None
        self._created = False  # only ever delete a file this writer created

    def __enter__(self) -> WavWriter:
        if self.path.exists() and not self.path.is_file():
            # Never write into (and later unlink) a device, FIFO or directory by mistake.
            raise ConversionFailed("output path is not a regular file")
        try:
            self._file = open(self.path, "wb", buffering=_BUFFER)
            self._created = True
            self._file.write(_header(0, 0, 0))  # placeholder, patched by finish()
        except OSError as exc:
            self.abort()
            raise _write_failed(exc) from None
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

    def set_format(self, sample_rate: int, channels: int) -> None:
        """Record the format for the header; known only once the first frame is decoded."""
        self.sample_rate = sample_rate
        self.channels = channels

    def write(self, pcm: bytes | memoryview) -> None:
        """Append interleaved s16le samples, refusing to grow past what RIFF sizes can express."""
        if self.data_bytes + len(pcm) > self._limit:
            raise ConversionFailed("output would exceed the 4 GiB limit of a WAV file")
        assert self._file is not None, "WavWriter used outside its with-block"
        try:
            self._file.write(pcm)
        except OSError as exc:
            raise _write_failed(exc) from None
        self.data_bytes += len(pcm)

    @property
    def file_size(self) -> int:
        """Size of the complete WAV file in bytes."""
        return HEADER_SIZE + self.data_bytes

    def abort(self) -> None:
        """Close and delete the partial output; never raises, it runs while handling errors."""
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None
        if self._created:
            with contextlib.suppress(OSError):
                self.path.unlink(missing_ok=True)

    def _finish(self) -> None:
        """Patch the header with the final sizes and close; on I/O failure delete the file."""
        assert self._file is not None, "WavWriter finished twice"
        try:
            self._file.seek(0)
            self._file.write(_header(self.sample_rate, self.channels, self.data_bytes))
            self._file.close()
            self._file = None
        except OSError as exc:
            self.abort()
            raise _write_failed(exc) from None


def _write_failed(exc: OSError) -> ConversionFailed:
    """One-line message from an OS error without the file name (it is a server-side path)."""
    return ConversionFailed(f"could not write output ({exc.strerror or 'I/O error'})")


def _header(sample_rate: int, channels: int, data_bytes: int) -> bytes:
    """Build the canonical 44-byte PCM header for the given format and data size."""
    block_align = channels * SAMPLE_WIDTH
    return _HEADER.pack(
        b"RIFF",
        HEADER_SIZE - 8 + data_bytes,
        b"WAVE",
        b"fmt ",
        16,
        _WAVE_FORMAT_PCM,
        channels,
        sample_rate,
        sample_rate * block_align,
        block_align,
        SAMPLE_WIDTH * 8,
        b"data",
        data_bytes,
    )
