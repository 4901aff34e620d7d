"""Inspect a local audio file: container, codec, format and tags.

``probe`` is the admission check for uploads and downloads: it decodes the first audio frame, so
a file that merely *looks* like audio (right extension, valid header, garbage payload) is refused
before a conversion job is queued for it. The helpers for opening a source safely live here too
and are shared with the conversion engine.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import av
import av.error
from av.audio.frame import AudioFrame
from av.audio.stream import AudioStream
from av.container import InputContainer
from av.packet import Packet

from wavforge.audio.errors import ConversionFailed, UnsupportedAudio

__all__ = ["AudioInfo", "FrameReader", "probe"]

# Tags worth surfacing; anything else (lyrics, encoder strings, binary blobs) is dropped.
_TAG_KEYS = ("title", "artist", "album", "genre", "date", "comment")
_MAX_TAG_CHARS = 1024
# Codecs flagged both lossy and lossless by FFmpeg; only those listed here count as lossless
# (WavPack is normally used losslessly, while DTS is almost always the lossy core).
_LOSSLESS_HYBRIDS = frozenset({"wavpack"})
# Keep FFmpeg on the local file system: no http/tcp/... even if a playlist format asks for it.
_OPEN_OPTIONS = {"protocol_whitelist": "file"}
# Demuxers that read *other* files named inside the input (a neighbour's upload, say): refused
# before anything is decoded.
_INDIRECT_FORMATS = frozenset({"concat", "hls", "dash", "imf", "webm_dash_manifest"})
# ffmpeg's default -max_error_rate: above this share of failed decodes the CLI reports failure.
MAX_ERROR_RATE = 2 / 3
# probe() stops looking for a first decodable frame after this many rejected packets.
_PROBE_MAX_FAILURES = 64


@dataclass(frozen=True)
class AudioInfo:
    """What the rest of the service needs to know about a source before converting it."""

    format_name: str
    codec: str
    sample_rate: int
    channels: int
    duration: float
    bit_rate: int | None
    lossless: bool
    tags: dict[str, str] = field(default_factory=dict)


def probe(path: Path) -> AudioInfo:
    """Describe the audio in ``path``, or raise ``UnsupportedAudio`` saying why it is refused."""
    with open_source(Path(path)) as container:
        stream = audio_stream(container)
        frame = first_frame(container, stream)
        codec = stream.codec_context.codec
        return AudioInfo(
            format_name=container.format.name,
            codec=codec.canonical_name,
            sample_rate=frame.sample_rate,
            channels=len(frame.layout.channels),
            duration=stream_duration(container, stream) or 0.0,
            bit_rate=stream.bit_rate or container.bit_rate or None,
            lossless=codec.lossless and (not codec.lossy or codec.name in _LOSSLESS_HYBRIDS),
            tags=_tags(container, stream),
        )


def require_regular_file(path: Path) -> Path:
    """Return the absolute path of an existing regular file, else refuse.

    Resolving to an absolute path matters: FFmpeg would treat a relative name such as
    ``pipe:0`` or ``concat:a|b`` as a protocol URL rather than a file. FIFOs and devices are
    refused because reading them can block forever.
    """
    try:
        resolved = Path(path).resolve(strict=True)
    except (OSError, RuntimeError):
        raise UnsupportedAudio("audio file does not exist") from None
    if not resolved.is_file():
        raise UnsupportedAudio("not a regular file")
    return resolved


@contextmanager
def open_source(path: Path) -> Iterator[InputContainer]:
    """Open a local file with PyAV, translating open failures into ``UnsupportedAudio``."""
    local = require_regular_file(path)
    try:
        container = av.open(str(local), metadata_errors="ignore", options=_OPEN_OPTIONS)
    except av.error.InvalidDataError:
        raise UnsupportedAudio("not an audio file (format not recognised)") from None
    except av.error.FFmpegError as exc:
        reason = exc.strerror or "unknown error"
        raise UnsupportedAudio(f"audio file could not be opened ({reason})") from None
    with container:
        if _INDIRECT_FORMATS.intersection(container.format.name.split(",")):
            raise UnsupportedAudio("playlists and file lists are not accepted, only audio files")
        yield container


def audio_stream(container: InputContainer) -> AudioStream:
    """Pick the stream FFmpeg itself would choose, so output matches the ``ffmpeg`` CLI."""
    if not container.streams.audio:
        raise UnsupportedAudio("no audio stream in file")
    try:
        best = container.streams.best("audio")
    except av.error.FFmpegError:
        best = None
    return best if isinstance(best, AudioStream) else container.streams.audio[0]


def first_frame(container: InputContainer, stream: AudioStream) -> AudioFrame:
    """Decode until the first non-empty frame; proves the payload is really decodable audio."""
    for frame in FrameReader(container, stream, give_up_after=_PROBE_MAX_FAILURES):
        return frame
    raise UnsupportedAudio("audio could not be decoded (no audio frames)")


class FrameReader:
    """Iterate decoded audio frames, tolerating corrupt packets the way the ffmpeg CLI does.

    ``ffmpeg`` logs and skips a packet the decoder rejects (junk between concatenated MP3s, a
    damaged frame in a download) and carries on, so skipping is required to produce the same
    samples. Like its default ``-max_error_rate``, the whole read fails when more than 2/3 of
    the attempts failed. Demuxer errors are never skipped: they mean the container itself broke.
    """

    def __init__(
        self, container: InputContainer, stream: AudioStream, *, give_up_after: int | None = None
    ) -> None:
        self._container = container
        self._stream = stream
        self._give_up_after = give_up_after  # failed packets tolerated before any frame decodes
        self.frames = 0
        self.failures = 0
        self.position = 0  # byte offset of the latest packet, for progress without a duration

    def __iter__(self) -> Generator[AudioFrame, None, None]:
        for packet in self._packets():
            for frame in self._decode(packet):
                self.frames += 1
                yield frame
        if self.failures > MAX_ERROR_RATE * (self.frames + self.failures):
            self._fail("too much of the audio is corrupt")

    def _packets(self) -> Iterator[Packet]:
        """Demux the chosen stream only, translating demuxer errors."""
        try:
            for packet in self._container.demux(self._stream):
                if packet.pos is not None and packet.pos > self.position:
                    self.position = packet.pos
                yield packet
        except av.error.FFmpegError:
            self._fail("the audio container is damaged part-way through")

    def _decode(self, packet: Packet) -> list[AudioFrame]:
        """Decode one packet; a rejected packet is counted and skipped, as ffmpeg does."""
        try:
            frames = self._stream.decode(packet)
        except av.error.FFmpegError:
            self.failures += 1
            limit = self._give_up_after
            if self.frames == 0 and limit is not None and self.failures >= limit:
                raise UnsupportedAudio("audio could not be decoded") from None
            return []
        return [f for f in frames if isinstance(f, AudioFrame) and f.samples > 0]

    def _fail(self, reason: str) -> NoReturn:
        """Refuse input that never decoded; report a part-way failure otherwise."""
        if self.frames == 0:
            raise UnsupportedAudio(f"audio could not be decoded: {reason}") from None
        raise ConversionFailed(reason) from None


def stream_duration(container: InputContainer, stream: AudioStream) -> float | None:
    """Best duration estimate in seconds: the stream's own, else the container's, else None."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration and container.duration > 0:
        return container.duration / av.time_base
    return None


def _tags(container: InputContainer, stream: AudioStream) -> dict[str, str]:
    """Merge container and stream tags (Ogg keeps them per stream) with lower-cased keys."""
    merged: dict[str, str] = {}
    for source in (container.metadata, stream.metadata):
        for key, value in source.items():
            name = str(key).lower()
            text = str(value).strip()[:_MAX_TAG_CHARS]
            if name in _TAG_KEYS and text and name not in merged:
                merged[name] = text
    return merged
