"""Inspect a local audio file: container, codec, format and tags.

``probe`` is the admission check for uploads and downloads: it decodes the first audio frame, so
a file that merely *looks* like audio (right extension, valid header, garbage payload) is refused
before a conversion job is queued for it. The helpers for opening a source safely live here too
and are shared with the conversion engine.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import av
import av.error
from av.audio.frame import AudioFrame
from av.audio.stream import AudioStream
from av.container import InputContainer

from wavforge.audio.errors import UnsupportedAudio

__all__ = ["AudioInfo", "probe"]

# Tags worth surfacing; anything else (lyrics, encoder strings, binary blobs) is dropped.
_TAG_KEYS = ("title", "artist", "album", "genre", "date", "comment")
_MAX_TAG_CHARS = 1024
# Codecs flagged both lossy and lossless by FFmpeg; only those listed here count as lossless
# (WavPack is normally used losslessly, while DTS is almost always the lossy core).
_LOSSLESS_HYBRIDS = frozenset({"wavpack"})
# Keep FFmpeg on the local file system: no http/tcp/... even if a playlist format asks for it.
_OPEN_OPTIONS = {"protocol_whitelist": "file"}


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
        raise UnsupportedAudio(f"audio file could not be opened ({exc.strerror})") from None
    with container:
        yield container


def audio_stream(container: InputContainer) -> AudioStream:
    """Pick the stream FFmpeg itself would choose, so output matches the ``ffmpeg`` CLI."""
    if not container.streams.audio:
        raise UnsupportedAudio("no audio stream in file")
    try:
        return container.streams.best("audio") or container.streams.audio[0]
    except av.error.FFmpegError:
        return container.streams.audio[0]


def first_frame(container: InputContainer, stream: AudioStream) -> AudioFrame:
    """Decode until the first non-empty frame; proves the payload is really decodable audio."""
    try:
        for packet in container.demux(stream):
            for frame in packet.decode():
                if isinstance(frame, AudioFrame) and frame.samples > 0:
                    return frame
    except av.error.FFmpegError:
        raise UnsupportedAudio("audio could not be decoded") from None
    raise UnsupportedAudio("audio could not be decoded (no audio frames)")


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
