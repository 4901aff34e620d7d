"""Inspect a local audio file: container, codec, format and tags.

``probe`` is the admission check for uploads and downloads: it decodes the first audio frame, so
a file that merely *looks* like audio (right extension, valid header, garbage payload) is refused
before a conversion job is queued for it. The helpers for opening a source safely live here too
and are shared with the conversion engine.
"""

from __future__ import annotations

import contextlib
import struct
from collections import deque
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import NoReturn

import av
import av.error
from av.audio.frame import AudioFrame
from av.audio.stream import AudioStream
from av.container import InputContainer
from av.packet import Packet

from wavforge.audio.errors import ConversionFailed, UnsupportedAudio
from wavforge.audio.formats import SourceFormat, channel_mask

__all__ = ["AudioInfo", "FrameReader", "audio_end", "probe", "read_tags", "source_format"]

# Tags worth surfacing; anything else (lyrics, encoder strings, binary blobs) is dropped.
_TAG_KEYS = ("title", "artist", "album", "genre", "date", "comment")
_MAX_TAG_CHARS = 1024
# Codecs flagged both lossy and lossless by FFmpeg; only those listed here count as lossless
# (WavPack is normally used losslessly, while DTS is almost always the lossy core).
_LOSSLESS_HYBRIDS = frozenset({"wavpack"})
# Demuxers for single-file audio containers: FFmpeg refuses anything else right after probing,
# before a demuxer runs, so formats that open *other* files named inside the input (HLS, DASH,
# concat lists, image sequences) or that parse scripts never get to read a neighbour's upload.
DEMUXERS = (
    "aac,ac3,aiff,amr,amrnb,amrwb,ape,asf,au,caf,dsf,dts,eac3,flac,iff,loas,matroska,mlp,mov,"
    "mp3,mpc,mpc8,ogg,shn,tak,truehd,tta,voc,w64,wav,wv,xwma"
)
# Keep FFmpeg on the local file system (no http/tcp/...) and on the demuxers above.
_OPEN_OPTIONS = {"protocol_whitelist": "file", "format_whitelist": DEMUXERS}
# Belt and braces: demuxers that read other files are refused even if the list above grows.
_INDIRECT_FORMATS = frozenset({"concat", "hls", "dash", "imf", "webm_dash_manifest"})
# ffmpeg's default -max_error_rate: above this share of failed decodes the CLI reports failure.
MAX_ERROR_RATE = 2 / 3
# The demuxers whose sample table bounds the audio (FFmpeg's "mov" handles MP4, M4A and MOV).
_SAMPLE_TABLE_FORMATS = frozenset({"mov", "mp4", "m4a"})
# Top-level MP4 boxes looked at to tell a fragmented file; real files have fewer than ten.
_MAX_TOP_LEVEL_BOXES = 64
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
        source = source_format(container, stream, first_frame(container, stream))
        return AudioInfo(
            format_name=container.format.name,
            codec=source.codec,
            sample_rate=source.sample_rate,
            channels=source.channels,
            duration=stream_duration(container, stream) or 0.0,
            bit_rate=source.bit_rate,
            lossless=source.lossless,
            tags=read_tags(container, stream),
        )


def source_format(
    container: InputContainer, stream: AudioStream, frame: AudioFrame
) -> SourceFormat:
    """What the decoder produces, judged from its first frame (the header can be wrong)."""
    codec = stream.codec_context.codec
    sample_format = frame.format.name.removesuffix("p")
    return SourceFormat(
        codec=codec.canonical_name,
        sample_format=sample_format,
        bits_per_raw_sample=_raw_bits(stream, sample_format),
        lossless=codec.lossless and (not codec.lossy or codec.name in _LOSSLESS_HYBRIDS),
        sample_rate=frame.sample_rate,
        channels=len(frame.layout.channels),
        channel_mask=channel_mask(frame.layout),
        bit_rate=stream.bit_rate or container.bit_rate or None,
    )


def _raw_bits(stream: AudioStream, sample_format: str) -> int:
    """Real bits per sample of a 32-bit decode: 24-bit FLAC, ALAC and PCM come out as s32.

    PyAV does not expose ``bits_per_raw_sample``, so read it where the codec keeps it: the
    PCM codec's name, FLAC's STREAMINFO, the ALAC config. Unknown means 0 (keep all 32 bits).
    """
    if sample_format not in ("s32", "s64"):
        return 0
    cc = stream.codec_context
    name, extra = cc.name, bytes(cc.extradata or b"")
    if name.startswith("pcm_s24"):
        return 24
    if name == "flac" and len(extra) >= 14:
        return ((extra[12] & 1) << 4 | extra[13] >> 4) + 1
    if name == "alac":  # ALACSpecificConfig, with or without its 12-byte atom header
        config = extra[12:] if extra[4:8] == b"alac" else extra
        return config[5] if len(config) >= 6 else 0
    return 0


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
    except (av.error.InvalidDataError, av.error.ArgumentError):
        # ArgumentError: recognised, but not an audio container we accept (a playlist, ...).
        raise UnsupportedAudio(
            "not an audio file (format not recognised or not accepted)"
        ) from None
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

    ``start``/``stop`` restrict the frames to packets whose byte position lies in
    ``[start, stop)``, so several readers can share one file. The packets before ``start`` are
    still demuxed (timestamps, and with them gapless trimming, stay exact), and the last
    ``warmup`` of them are decoded and thrown away so the decoder's state — overlap buffers,
    bit reservoir, filter history — is the same as in a read from the beginning.
    """

    def __init__(
        self,
        container: InputContainer,
        stream: AudioStream,
        *,
        give_up_after: int | None = None,
        start: int | None = None,
        stop: int | None = None,
        warmup: int = 0,
        check_errors: bool = True,
    ) -> None:
        self._container = container
        self._stream = stream
        self._give_up_after = give_up_after  # failed packets tolerated before any frame decodes
        self._start, self._stop, self._warmup = start, stop, warmup
        self._check_errors = check_errors
        self.frames = 0
        self.failures = 0
        self.position = 0  # byte offset of the latest packet, for progress without a duration

    def __iter__(self) -> Generator[AudioFrame, None, None]:
        for packet in self._packets():
            for frame in self._decode(packet):
                self.frames += 1
                yield frame
        if self._check_errors:
            check_error_rate(self.frames, self.failures)

    def _packets(self) -> Iterator[Packet[AudioStream]]:
        """Demux the chosen stream only, within the span, translating demuxer errors."""
        start, stop = self._start, self._stop
        skipped: deque[Packet[AudioStream]] = deque(maxlen=self._warmup or 1)
        try:
            for packet in self._container.demux(self._stream):
                pos = packet.pos
                if pos is not None:
                    if stop is not None and pos >= stop:
                        return
                    self.position = max(self.position, pos)
                if start is not None:
                    if pos is None or pos < start:
                        skipped.append(packet)
                        continue
                    start = None
                    self._warm_up(skipped)
                yield packet
        except av.error.FFmpegError:
            self._fail("the audio container is damaged part-way through")

    def _warm_up(self, packets: deque[Packet[AudioStream]]) -> None:
        """Decode the packets just before the span and discard what they produce."""
        if not self._warmup:
            return
        for packet in packets:
            with contextlib.suppress(av.error.FFmpegError):
                self._stream.decode(packet)

    def _decode(self, packet: Packet[AudioStream]) -> list[AudioFrame]:
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
        fail(self.frames, reason)


def check_error_rate(frames: int, failures: int) -> None:
    """Refuse a read in which more than ``MAX_ERROR_RATE`` of the packets failed to decode."""
    if failures > MAX_ERROR_RATE * (frames + failures):
        fail(frames, "too much of the audio is corrupt")


def fail(frames: int, reason: str) -> NoReturn:
    """Refuse input that never decoded; report a part-way failure otherwise."""
    if frames == 0:
        raise UnsupportedAudio(f"audio could not be decoded: {reason}") from None
    raise ConversionFailed(reason) from None


def stream_duration(container: InputContainer, stream: AudioStream) -> float | None:
    """Best duration estimate in seconds: the stream's own, else the container's, else None."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration and container.duration > 0:
        return container.duration / av.time_base
    return None


def audio_end(path: Path, container: InputContainer, stream: AudioStream) -> Fraction | None:
    """When the container says the audio ends, in seconds; None where it does not say.

    An AAC encoder pads its last frame to 1024 samples; an MP4 records the real length in its
    sample table (the last sample's duration, and the edit list when there is one). FFmpeg 9
    discards the decoded samples past that point, as it does an MP3's LAME padding; the
    FFmpeg that PyAV bundles does not, so the engine trims them itself. FFmpeg 9 leaves a
    fragmented MP4 alone (its fragments carry no such end), and so does this.
    """
    names = set(container.format.name.split(","))
    if not names & _SAMPLE_TABLE_FORMATS or not stream.duration or stream.time_base is None:
        return None
    if _fragmented(path):
        return None
    return (stream.start_time or 0) * stream.time_base + stream.duration * stream.time_base


def _fragmented(path: Path) -> bool:
    """Whether an MP4 has top-level ``moof`` boxes; reads box headers only, a few at most."""
    with open(path, "rb") as file:
        for _ in range(_MAX_TOP_LEVEL_BOXES):
            header = file.read(8)
            if len(header) < 8:
                return False
            size, kind = struct.unpack(">I4s", header)
            if kind == b"moof":
                return True
            if size == 1:
                large = file.read(8)
                if len(large) < 8:
                    return False
                size = struct.unpack(">Q", large)[0] - 8
            if size < 8:  # 0 runs to the end of the file; below 8 is malformed
                return False
            file.seek(size - 8, 1)
    return False


def read_tags(container: InputContainer, stream: AudioStream) -> dict[str, str]:
    """Merge container and stream tags (Ogg keeps them per stream) with lower-cased keys."""
    merged: dict[str, str] = {}
    for source in (container.metadata, stream.metadata):
        for key, value in source.items():
            name = str(key).lower()
            text = str(value).strip()[:_MAX_TAG_CHARS]
            if name in _TAG_KEYS and text and name not in merged:
                merged[name] = text
    return merged
