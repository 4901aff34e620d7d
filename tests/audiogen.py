"""Test helpers that synthesise small audio fixtures and read them back.

Fixtures are generated on the fly (a few seconds of tones plus seeded noise) instead of being
checked in, so the tests exercise the real encoders and stay reproducible without binary blobs.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import struct
import subprocess
import tempfile
import wave
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

import av
import imageio_ffmpeg
import numpy as np

# The oracle every decode is compared with: the static FFmpeg 9.0.2 CLI of the pinned
# imageio-ffmpeg wheel, the newest FFmpeg release available as a package. The system's
# ffmpeg (Debian's 5.1) only encodes fixtures, and ffprobe reads headers back.
ORACLE = imageio_ffmpeg.get_ffmpeg_exe()

_CHUNK = 4096  # samples per synthesised frame; small enough to keep memory flat


def _signal(
    seconds: float, rate: int, channels: int, *, loud: bool, seed: int = 1234
) -> np.ndarray:
    """Return float32 planar audio (channels, n): a chord per channel plus a little noise.

    Each channel gets a different pitch so a channel swap or interleaving bug changes the bytes.
    With ``loud`` the peaks reach ~1.8x full scale so the decoder output has to be clipped.
    """
    n = round(seconds * rate)
    t = np.arange(n, dtype=np.float64) / rate
    rng = np.random.default_rng(seed)
    gain = 1.8 if loud else 0.45
    rows = []
    for ch in range(channels):
        base = 220.0 * (1.0 + 0.25 * ch)
        tone = np.sin(2 * np.pi * base * t) + 0.5 * np.sin(2 * np.pi * base * 1.5 * t)
        rows.append(gain * tone / 1.5 + 0.01 * rng.standard_normal(n))
    return np.asarray(rows, dtype=np.float32)


def _encode(
    path: Path,
    codec: str,
    signal: np.ndarray,
    rate: int,
    *,
    options: dict[str, str] | None = None,
    metadata: dict[str, str] | None = None,
    bit_rate: int | None = None,
) -> Path:
    """Encode planar float ``signal`` into ``path`` with a PyAV encoder, frame by frame."""
    channels = signal.shape[0]
    layout = "mono" if channels == 1 else "stereo" if channels == 2 else f"{channels}c"
    with av.open(str(path), "w") as out:
        out.metadata.update(metadata or {})
        stream = out.add_stream(codec, rate=rate, layout=layout, options=options or {})
        assert isinstance(stream, av.AudioStream)
        if bit_rate:
            stream.bit_rate = bit_rate
        sample_fmt = stream.codec_context.format.name
        for start in range(0, signal.shape[1], _CHUNK):
            chunk = signal[:, start : start + _CHUNK]
            frame = _frame(chunk, sample_fmt, layout, rate, start)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def _frame(chunk: np.ndarray, sample_fmt: str, layout: str, rate: int, pts: int) -> av.AudioFrame:
    """Build an AudioFrame in the encoder's native sample format from float planar data."""
    wide = chunk.astype(np.float64)
    data: np.ndarray
    if sample_fmt.startswith("u8"):
        data = (np.clip(np.rint(wide * 127.0), -128, 127) + 128).astype(np.uint8)
    elif sample_fmt.startswith("s16"):
        data = np.clip(np.rint(wide * 32767.0), -32768, 32767).astype(np.int16)
    elif sample_fmt.startswith("s32"):
        data = np.clip(np.rint(wide * 2147483647.0), -(2**31), 2**31 - 1).astype(np.int32)
    elif sample_fmt.startswith("dbl"):
        data = wide
    else:
        data = chunk.astype(np.float32)
    if not sample_fmt.endswith("p"):
        data = data.T.reshape(1, -1)
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(data), format=sample_fmt, layout=layout)
    frame.sample_rate = rate
    frame.pts = pts
    return frame


def make_mp3(
    path: Path,
    seconds: float = 3.0,
    *,
    rate: int = 44100,
    channels: int = 2,
    bitrate: int = 320_000,
    vbr: bool = False,
    title: str | None = None,
    artist: str | None = None,
    loud: bool = False,
) -> Path:
    """Write an MP3 with libmp3lame; the muxer adds a LAME/Xing header, so gapless trim applies."""
    metadata = {k: v for k, v in {"title": title, "artist": artist}.items() if v is not None}
    # VBR the way `ffmpeg -q:a 2` asks for it: qscale flag plus a global quality (2 * QP2LAMBDA).
    options = {"flags": "+qscale", "global_quality": str(2 * 118)} if vbr else None
    signal = _signal(seconds, rate, channels, loud=loud)
    return _encode(
        Path(path),
        "libmp3lame",
        signal,
        rate,
        options=options,
        metadata=metadata,
        bit_rate=None if vbr else bitrate,
    )


def make_flac(path: Path, seconds: float = 2.0, *, rate: int = 44100, channels: int = 2) -> Path:
    """Write a 16-bit FLAC (the encoder's s16 input format) via PyAV."""
    signal = _signal(seconds, rate, channels, loud=False, seed=99)
    return _encode(Path(path), "flac", signal, rate)


def make_wav(
    path: Path,
    seconds: float = 1.0,
    *,
    rate: int = 44100,
    channels: int = 2,
    codec: str = "pcm_s16le",
) -> Path:
    """Write a WAV with any PCM codec (pcm_u8, pcm_s24le, pcm_f32le, pcm_f64le, ...)."""
    return make_audio(path, codec, seconds, rate=rate, channels=channels)


def make_audio(
    path: Path,
    codec: str,
    seconds: float = 1.0,
    *,
    rate: int = 44100,
    channels: int = 2,
    loud: bool = False,
    signal: np.ndarray | None = None,
) -> Path:
    """Encode with any PyAV encoder (alac, wavpack, pcm_*); the muxer follows the file suffix.

    ``signal`` (float planar, channels x n) overrides the synthesised tones, e.g. to inject
    NaN or out-of-range samples into float PCM.
    """
    if signal is None:
        signal = _signal(seconds, rate, channels, loud=loud, seed=7)
    return _encode(Path(path), codec, signal, rate)


def ffmpeg_s16(path: Path) -> bytes:
    """Decode ``path`` with the ffmpeg CLI to raw s16le: the reference the engine must match."""
    cmd = [ORACLE, "-nostdin", "-v", "error", "-i", str(path), "-f", "s16le", "-"]
    result = subprocess.run(cmd, capture_output=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"ffmpeg failed: {result.stderr.decode(errors='replace').strip()}")
    return result.stdout


def wav_pcm_bytes(path: Path) -> tuple[int, int, int, bytes]:
    """Read a WAV with the stdlib ``wave`` module: (channels, sample_width, rate, raw data)."""
    with wave.open(str(path), "rb") as wav:
        return (
            wav.getnchannels(),
            wav.getsampwidth(),
            wav.getframerate(),
            wav.readframes(wav.getnframes()),
        )


# =========================================================================== music-like corpus
#
# The corpus below covers every source kind the engine promises to handle. Signals are
# "music-like" (notes with attacks and decays, a bass line, hi-hat noise bursts, loud and quiet
# sections) rather than steady tones, so VBR encoders, the MP3 bit reservoir and the AAC/Opus
# transient handling are all exercised the way real tracks exercise them.

MUSIC_CHUNK = 1 << 15  # samples per synthesised block; fixed so every run builds identical audio
_NOTE_SECONDS = 0.25  # eighth notes at 120 bpm
_SECTION_SECONDS = 4.0  # dynamics change every two bars
_SECTION_GAINS = (1.0, 0.55, 0.2, 0.85, 0.03, 0.7, 1.0, 0.4)  # includes a near-silent section
_PENTATONIC = (0, 2, 4, 7, 9, 12, 14, 16)
_RAW_PEAK = 1.75  # ~largest |voice + bass + hat| before scaling, so peaks land near `peak`

LOSSY_CODECS = frozenset({"mp3", "aac", "vorbis", "opus"})

# Tags every tag-capable container gets; non-ASCII on purpose (Latin-1 range, dash, CJK).
TAGS: dict[str, str] = {
    "title": "Beyoncé — 東京",
    "artist": "Sigur Rós & 坂本龍一",
    "album": "Ça plane — Live",
    "genre": "Électronique",
    "date": "2024",
    "comment": "naïve café ☕ test",
}
# Where each tag lands in the output WAV's LIST/INFO chunk.
INFO_IDS: dict[str, str] = {
    "title": "INAM",
    "artist": "IART",
    "album": "IPRD",
    "genre": "IGNR",
    "date": "ICRD",
    "comment": "ICMT",
}


def music_chunks(
    seconds: float, rate: int, channels: int, *, peak: float = 0.5, seed: int = 2024
) -> Iterator[np.ndarray]:
    """Yield float32 planar blocks (channels, <=MUSIC_CHUNK) of a deterministic little tune.

    Generated block by block so a three-minute track never sits in memory as float64 arrays,
    and in float32 with two trig calls per sample so minutes of it synthesise in about a
    second. ``peak`` is roughly the largest absolute sample: 0.5 is a normal master, 1.8 makes
    the decoder output exceed full scale so integer output has to clamp.
    """
    total = round(seconds * rate)
    melody = np.random.default_rng(seed).choice(_PENTATONIC, size=(channels, 4096))
    bass = np.random.default_rng(seed + 1).choice((0, 5, 7, 3), size=1024)
    semitone = 2.0 ** (np.arange(64) / 12)
    per_note = round(1 / _NOTE_SECONDS)  # notes per second
    for start in range(0, total, MUSIC_CHUNK):
        count = min(MUSIC_CHUNK, total - start)
        index = start + np.arange(count, dtype=np.int64)
        t = index / rate
        # Integer arithmetic for the note grid: exact, and cheaper than float floor division.
        note = index * per_note // rate
        since = ((index * per_note - note * rate) / (per_note * rate)).astype(np.float32)
        envelope = np.exp(-6.0 * since) * (1.0 - np.exp(-400.0 * since))
        section = _SECTION_GAINS[int(start / rate // _SECTION_SECONDS) % len(_SECTION_GAINS)]
        bass_freq = 55.0 * semitone[bass[index // (2 * rate) % 1024]]
        low = 0.5 * np.sin(2 * np.pi * bass_freq * t).astype(np.float32)
        noise = np.random.default_rng([seed, start]).random(count, dtype=np.float32)
        hat = 0.3 * (2 * noise - 1) * np.exp(-60.0 * since)
        block = np.empty((channels, count), dtype=np.float32)
        for ch in range(channels):
            semis = melody[ch, note % 4096] + 3 * ch  # each channel a different line
            omega = (2 * np.pi * 220.0 * (1 + 0.002 * ch)) * semitone[semis]
            phase = omega.astype(np.float32) * since
            sin, cos = np.sin(phase), np.cos(phase)
            # sin p + 0.3 sin 2p + 0.15 sin 3p, with sin 2p = 2 sin cos, sin 3p = 3 sin - 4 sin^3
            voice = sin * (1.45 + 0.6 * cos - 0.6 * sin * sin)
            pan = 1.0 - 0.15 * (ch % 2)
            block[ch] = pan * (envelope * voice + low) + hat
        block *= np.float32(section * peak / _RAW_PEAK)
        yield block


def music(
    seconds: float, rate: int, channels: int, *, peak: float = 0.5, seed: int = 2024
) -> np.ndarray:
    """The whole of :func:`music_chunks` as one (channels, n) array, for short signals."""
    blocks = list(music_chunks(seconds, rate, channels, peak=peak, seed=seed))
    return np.concatenate(blocks, axis=1) if blocks else np.zeros((channels, 0), np.float32)


def _layout_name(channels: int) -> str:
    """A named layout where FFmpeg has one (FLAC and ALAC refuse unnamed '6c' layouts)."""
    named = {1: "mono", 2: "stereo", 3: "2.1", 4: "quad", 5: "5.0", 6: "5.1", 8: "7.1"}
    return named.get(channels, f"{channels}c")


def encode_blocks(
    path: Path,
    codec: str,
    blocks: Iterable[np.ndarray],
    rate: int,
    channels: int,
    *,
    sample_fmt: str | None = None,
    layout: str | None = None,
    bit_rate: int | None = None,
    codec_options: dict[str, str] | None = None,
    container_options: dict[str, str] | None = None,
    metadata: Mapping[str, str] | None = None,
) -> Path:
    """Encode float planar blocks with a PyAV encoder; the file suffix picks the muxer.

    ``sample_fmt`` selects the encoder input format, which for FLAC/ALAC/PCM decides the bit
    depth (``s16``/``s16p`` = 16 bit, ``s32``/``s32p`` = 24 bit for FLAC and ALAC).
    ``container_options`` go to the muxer (e.g. ``id3v2_version=0`` for a bare MP3).
    """
    layout = layout or _layout_name(channels)
    with av.open(str(path), "w", options=container_options or {}) as out:
        out.metadata.update(metadata or {})
        stream = out.add_stream(codec, rate=rate, layout=layout, options=codec_options or {})
        assert isinstance(stream, av.AudioStream)
        if sample_fmt:
            stream.format = sample_fmt
        if bit_rate:
            stream.bit_rate = bit_rate
        fmt = stream.codec_context.format.name
        pts = 0
        for block in blocks:
            # Encoders with a fixed frame size (MP3, AAC, Opus) buffer internally via PyAV's
            # audio FIFO, so the block size here is free.
            for packet in stream.encode(_frame(block, fmt, layout, rate, pts)):
                out.mux(packet)
            pts += block.shape[1]
        for packet in stream.encode(None):
            out.mux(packet)
    return Path(path)


def make_music(
    path: Path,
    codec: str,
    seconds: float = 2.0,
    *,
    rate: int = 44100,
    channels: int = 2,
    sample_fmt: str | None = None,
    bit_rate: int | None = None,
    vbr: bool = False,
    peak: float = 0.5,
    tags: Mapping[str, str] | None = None,
    codec_options: dict[str, str] | None = None,
    container_options: dict[str, str] | None = None,
) -> Path:
    """Encode the music-like signal with any PyAV encoder: MP3, AAC, Opus, FLAC, ALAC, PCM.

    ``vbr`` asks libmp3lame for ``-q:a 2``-style VBR. Tags go into the container's native
    tagging (ID3v2.4, Vorbis comments, iTunes atoms, RIFF INFO, AIFF NAME/ANNO).
    """
    options = dict(codec_options or {})
    if vbr:
        options.update({"flags": "+qscale", "global_quality": str(2 * 118)})
    return encode_blocks(
        Path(path),
        codec,
        music_chunks(seconds, rate, channels, peak=peak),
        rate,
        channels,
        sample_fmt=sample_fmt,
        bit_rate=None if vbr else bit_rate,
        codec_options=options,
        container_options=container_options,
        metadata=tags,
    )


def make_music_mp3(
    path: Path,
    seconds: float = 2.0,
    *,
    rate: int = 44100,
    channels: int = 2,
    bit_rate: int = 192_000,
    vbr: bool = False,
    peak: float = 0.5,
    tags: Mapping[str, str] | None = None,
    fast: bool = False,
) -> Path:
    """An MP3 from libmp3lame through FFmpeg's mp3 muxer, which writes the Xing/Info + LAME tag.

    The LAME tag carries encoder delay and padding, so a gapless decoder returns exactly
    ``round(seconds * rate)`` frames. MPEG-2/2.5 rates (<= 24 kHz) cap the CBR bit rate at
    160 kbps, so pass a bit rate the rate allows. ``fast`` trades LAME's psychoacoustic
    effort for ~2x speed, for the minutes-long files of the parallel-decode tests.
    """
    return make_music(
        path,
        "libmp3lame",
        seconds,
        rate=rate,
        channels=channels,
        bit_rate=bit_rate,
        vbr=vbr,
        peak=peak,
        tags=tags,
        codec_options={"compression_level": "7"} if fast else None,
    )


def make_vorbis(
    path: Path,
    seconds: float = 2.0,
    *,
    rate: int = 44100,
    channels: int = 2,
    tags: Mapping[str, str] | None = None,
    native: bool = False,
) -> Path:
    """An Ogg Vorbis file, by default from libvorbis (via the ffmpeg CLI) like real-world files.

    FFmpeg's own experimental ``vorbis`` encoder (``native=True``, PyAV) writes streams that the
    FFmpeg 5.1 and FFmpeg 8 decoders reconstruct differently (one channel off by up to 0.7 of
    full scale), so it is no basis for bit-exact tests; libvorbis streams decode alike. The
    signal is synthesised here and handed over as lossless FLAC.
    """
    if native:
        return encode_blocks(
            Path(path),
            "vorbis",
            music_chunks(seconds, rate, channels),
            rate,
            channels,
            codec_options={"strict": "experimental"},
            metadata=tags,
        )
    pcm = Path(path).with_suffix(".vorbis-src.flac")
    make_music(pcm, "flac", seconds, rate=rate, channels=channels, sample_fmt="s16")
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(pcm), "-map_metadata", "-1"]
    for key, value in (tags or {}).items():
        cmd += ["-metadata", f"{key}={value}"]
    cmd += ["-c:a", "libvorbis", "-q:a", "4", str(path)]
    subprocess.run(cmd, check=True, capture_output=True)
    pcm.unlink()
    return Path(path)


# --------------------------------------------------------------------------- ID3v2.3 + APIC


def tiny_png(size: int = 8) -> bytes:
    """A valid ``size`` x ``size`` RGB PNG (a gradient), built by hand for an APIC frame."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    rows = b"".join(
        b"\0" + b"".join(bytes((x * 31 % 256, y * 31 % 256, 200)) for x in range(size))
        for y in range(size)
    )
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def _syncsafe(value: int) -> bytes:
    """ID3v2 header sizes use 7 bits per byte so they never contain an MPEG sync pattern."""
    return bytes((value >> shift) & 0x7F for shift in (21, 14, 7, 0))


def _id3_frame(frame_id: str, body: bytes) -> bytes:
    """An ID3v2.3 frame: id, plain 32-bit big-endian size (v2.3 is not syncsafe), no flags."""
    return frame_id.encode("ascii") + struct.pack(">IH", len(body), 0) + body


def _utf16(text: str) -> bytes:
    """ID3v2.3 text encoding 1: UTF-16 with BOM (v2.3 has no UTF-8)."""
    return b"\xff\xfe" + text.encode("utf-16-le")


def id3v23_tag(tags: Mapping[str, str], picture: bytes | None = None, padding: int = 64) -> bytes:
    """Build an ID3v2.3 tag: TIT2/TPE1/TALB/TCON/TYER/COMM text frames plus an APIC cover."""
    text_ids = {"title": "TIT2", "artist": "TPE1", "album": "TALB", "genre": "TCON", "date": "TYER"}
    frames = b""
    for key, frame_id in text_ids.items():
        if key in tags:
            frames += _id3_frame(frame_id, b"\x01" + _utf16(tags[key]))
    if "comment" in tags:
        # encoding, language, empty description (BOM + UTF-16 NUL), then the text.
        body = b"\x01eng" + _utf16("") + b"\0\0" + _utf16(tags["comment"])
        frames += _id3_frame("COMM", body)
    if picture is not None:
        # Latin-1 encoding, MIME type, picture type 3 (front cover), empty description.
        frames += _id3_frame("APIC", b"\x00image/png\x00\x03\x00" + picture)
    frames += b"\0" * padding
    return b"ID3\x03\x00\x00" + _syncsafe(len(frames)) + frames


def make_id3_mp3(
    path: Path,
    seconds: float = 2.0,
    *,
    tags: Mapping[str, str] = TAGS,
    picture: bytes | None = None,
    rate: int = 44100,
    channels: int = 2,
) -> Path:
    """An MP3 with a hand-built ID3v2.3 tag (text frames + APIC PNG) in front of the audio.

    The muxer's own ID3v2.4 tag is switched off so the file has exactly one tag, like files
    from iTunes/Windows Media; the Xing/LAME header after it still gives gapless decoding.
    FFmpeg exposes the APIC picture as an extra (attached picture) video stream.
    """
    bare = Path(path).with_suffix(".bare.mp3")
    make_music(
        bare,
        "libmp3lame",
        seconds,
        rate=rate,
        channels=channels,
        bit_rate=192_000,
        container_options={"id3v2_version": "0"},
    )
    tag = id3v23_tag(tags, picture if picture is not None else tiny_png())
    Path(path).write_bytes(tag + bare.read_bytes())
    bare.unlink()
    return Path(path)


# --------------------------------------------------------------------------- the corpus

Builder = Callable[[Path], Path]

# Output encoding -> the ffmpeg raw muxer that produces the same samples (the oracle format).
ENCODING_RAW = {
    "pcm_s16le": "s16le",
    "pcm_s24le": "s24le",
    "pcm_s32le": "s32le",
    "pcm_f32le": "f32le",
}
RAW_WIDTH = {"s16le": 2, "s24le": 3, "s32le": 4, "f32le": 4}
S16, S24, S32, F32 = "pcm_s16le", "pcm_s24le", "pcm_s32le", "pcm_f32le"


class Source(NamedTuple):
    """One corpus file: how to build it and what a correct conversion of it looks like."""

    id: str
    build: Builder  # writes the file at the given path and returns it
    suffix: str
    codec: str  # ffprobe's codec_name for the source
    rate: int
    channels: int
    encoding: str  # default output encoding, per the engine's rules
    seconds: float  # synthesised length
    tags: Mapping[str, str] = {}  # tags that must reach the output's LIST/INFO chunk

    @property
    def lossy(self) -> bool:
        return self.codec in LOSSY_CODECS

    @property
    def raw(self) -> str:
        """The ffmpeg raw format holding the default output's samples."""
        return ENCODING_RAW[self.encoding]

    def make(self, directory: Path) -> Path:
        """Build the file as ``<directory>/<id>.<suffix>`` (ids are unique)."""
        return self.build(Path(directory) / f"{self.id}.{self.suffix}")


def _with(function: Callable[..., Path], *args: object, **kwargs: object) -> Builder:
    """Freeze generator arguments so the corpus table below stays one line per file."""

    def build(path: Path) -> Path:
        return function(path, *args, **kwargs)

    return build


# A CBR bit rate each MPEG version accepts (MPEG-2/2.5, i.e. <= 24 kHz, top out at 160 kbps).
MP3_CBR_RATES = {
    8000: 32_000,
    11025: 48_000,
    16000: 64_000,
    22050: 96_000,
    32000: 128_000,
    44100: 192_000,
    48000: 256_000,
}


def _mp3_grid() -> list[Source]:
    """CBR and VBR, mono and stereo, at every MPEG-1, MPEG-2 and MPEG-2.5 rate LAME takes."""
    grid = []
    for rate, bit_rate in MP3_CBR_RATES.items():
        for channels, layout in ((1, "mono"), (2, "stereo")):
            for vbr, mode in ((False, "cbr"), (True, "vbr")):
                build = _with(
                    make_music_mp3, 1.5, rate=rate, channels=channels, bit_rate=bit_rate, vbr=vbr
                )
                name = f"mp3-{mode}-{layout}-{rate}"
                grid.append(Source(name, build, "mp3", "mp3", rate, channels, S16, 1.5))
    return grid


_AIFF_TAGS = {k: TAGS[k] for k in ("title", "comment")}  # the aiff muxer writes NAME and ANNO


def _pcm(codec: str, seconds: float, rate: int, channels: int, **kw: object) -> Builder:
    """Builder for PCM in WAV/AIFF and for FLAC/ALAC at a given encoder input format."""
    return _with(make_music, codec, seconds, rate=rate, channels=channels, **kw)


# fmt: off
CORPUS: tuple[Source, ...] = (
    *_mp3_grid(),
    Source("mp3-id3v24-tags", _with(make_music_mp3, 2.0, tags=TAGS),
           "mp3", "mp3", 44100, 2, S16, 2.0, TAGS),
    Source("mp3-id3v23-apic", _with(make_id3_mp3, 2.0),
           "mp3", "mp3", 44100, 2, S16, 2.0, TAGS),
    Source("mp3-loud", _with(make_music_mp3, 2.0, peak=1.8),
           "mp3", "mp3", 44100, 2, S16, 2.0),
    Source("aac-stereo-44100", _pcm("aac", 2.0, 44100, 2, tags=TAGS),
           "m4a", "aac", 44100, 2, S16, 2.0, TAGS),
    Source("aac-mono-48000", _pcm("aac", 2.0, 48000, 1),
           "m4a", "aac", 48000, 1, S16, 2.0),
    Source("vorbis-stereo-44100", _with(make_vorbis, 2.0, tags=TAGS),
           "ogg", "vorbis", 44100, 2, S16, 2.0, TAGS),
    Source("vorbis-mono-22050", _with(make_vorbis, 2.0, rate=22050, channels=1),
           "ogg", "vorbis", 22050, 1, S16, 2.0),
    Source("opus-stereo-48000", _pcm("libopus", 2.0, 48000, 2, tags=TAGS),
           "opus", "opus", 48000, 2, S16, 2.0, TAGS),
    Source("opus-mono-48000", _pcm("libopus", 2.0, 48000, 1),
           "ogg", "opus", 48000, 1, S16, 2.0),
    Source("flac-16-stereo-44100", _pcm("flac", 2.0, 44100, 2, sample_fmt="s16", tags=TAGS),
           "flac", "flac", 44100, 2, S16, 2.0, TAGS),
    Source("flac-24-stereo-96000", _pcm("flac", 1.0, 96000, 2, sample_fmt="s32"),
           "flac", "flac", 96000, 2, S24, 1.0),
    Source("flac-16-6ch-48000", _pcm("flac", 1.0, 48000, 6, sample_fmt="s16"),
           "flac", "flac", 48000, 6, S16, 1.0),
    Source("wav-s16-stereo-44100", _pcm("pcm_s16le", 1.5, 44100, 2, tags=TAGS),
           "wav", "pcm_s16le", 44100, 2, S16, 1.5, TAGS),
    Source("wav-s24-stereo-48000", _pcm("pcm_s24le", 1.0, 48000, 2),
           "wav", "pcm_s24le", 48000, 2, S24, 1.0),
    Source("wav-s32-stereo-44100", _pcm("pcm_s32le", 1.0, 44100, 2),
           "wav", "pcm_s32le", 44100, 2, S32, 1.0),
    Source("wav-f32-stereo-44100", _pcm("pcm_f32le", 1.0, 44100, 2),
           "wav", "pcm_f32le", 44100, 2, F32, 1.0),
    Source("wav-f32-loud", _pcm("pcm_f32le", 1.0, 44100, 2, peak=1.8),
           "wav", "pcm_f32le", 44100, 2, F32, 1.0),
    Source("wav-f32-6ch-48000", _pcm("pcm_f32le", 0.5, 48000, 6),
           "wav", "pcm_f32le", 48000, 6, F32, 0.5),
    Source("aiff-s16-stereo-44100", _pcm("pcm_s16be", 1.5, 44100, 2, tags=_AIFF_TAGS),
           "aiff", "pcm_s16be", 44100, 2, S16, 1.5, _AIFF_TAGS),
    Source("aiff-s24-mono-48000", _pcm("pcm_s24be", 1.0, 48000, 1),
           "aiff", "pcm_s24be", 48000, 1, S24, 1.0),
    Source("alac-16-stereo-44100", _pcm("alac", 1.5, 44100, 2, sample_fmt="s16p", tags=TAGS),
           "m4a", "alac", 44100, 2, S16, 1.5, TAGS),
    Source("alac-24-stereo-48000", _pcm("alac", 1.0, 48000, 2, sample_fmt="s32p"),
           "m4a", "alac", 48000, 2, S24, 1.0),
)

# Minutes-long MP3s for the parallel (split across processes) decode: each at least 2 minutes,
# so that two parts of >= 60 s are worth it. They take ~1-3 s each to encode, so they are built
# only when a test asks. Odd lengths on purpose: no split lines up with a round frame count.
LONG_MP3: tuple[Source, ...] = (
    Source("long-cbr-stereo-44100", _with(make_music_mp3, 124.6, bit_rate=128_000, fast=True),
           "mp3", "mp3", 44100, 2, S16, 124.6),
    Source("long-vbr-mono-48000", _with(make_music_mp3, 130.2, rate=48000, channels=1,
                                        vbr=True, fast=True),
           "mp3", "mp3", 48000, 1, S16, 130.2),
    Source("long-cbr-mono-22050", _with(make_music_mp3, 170.2, rate=22050, channels=1,
                                        bit_rate=64_000, fast=True),
           "mp3", "mp3", 22050, 1, S16, 170.2),
    Source("long-vbr-stereo-22050", _with(make_music_mp3, 141.9, rate=22050, vbr=True, fast=True),
           "mp3", "mp3", 22050, 2, S16, 141.9),
)
# fmt: on
SOURCES: dict[str, Source] = {source.id: source for source in (*CORPUS, *LONG_MP3)}


class Corpus:
    """Builds corpus files on first use and keeps them, and their oracle decodes, per module."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self._built: dict[str, Path] = {}
        self._oracles: dict[tuple[str, str], bytes] = {}

    def __getitem__(self, source_id: str) -> Path:
        if source_id not in self._built:
            self._built[source_id] = SOURCES[source_id].make(self.directory)
        return self._built[source_id]

    def build(self, source_ids: Iterable[str], workers: int | None = None) -> None:
        """Build many files at once in worker processes (encoders are single-threaded).

        Workers are spawned, not forked, and are gone when this returns, so the test process
        is single-threaded again (the engine only splits decoding in such a process).
        """
        missing = [
            source_id for source_id in dict.fromkeys(source_ids) if source_id not in self._built
        ]
        workers = min(workers or os.cpu_count() or 1, len(missing))
        if workers < 2:
            for source_id in missing:
                self[source_id]
            return
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            paths = pool.map(_make_source, missing, [self.directory] * len(missing))
            self._built.update(zip(missing, paths, strict=True))

    def oracle(self, source_id: str, fmt: str) -> bytes:
        """The ffmpeg CLI's decode of a corpus file into raw ``fmt``."""
        if (source_id, fmt) not in self._oracles:
            self.prefetch([(source_id, fmt)])
        return self._oracles[(source_id, fmt)]

    def prefetch(self, wanted: Iterable[tuple[str, str]]) -> None:
        """Decode many (source id, raw format) pairs in one ffmpeg run (each start costs ~0.2 s)."""
        missing = sorted(set(wanted) - set(self._oracles))
        decoded = ffmpeg_pcm_many([(self[source_id], fmt) for source_id, fmt in missing])
        self._oracles.update(zip(missing, decoded, strict=True))


def _make_source(source_id: str, directory: Path) -> Path:
    """Build one corpus file; module-level so a worker process can run it."""
    return SOURCES[source_id].make(directory)


# --------------------------------------------------------------------------- oracles


def ffmpeg_pcm(path: Path, fmt: str = "s16le") -> bytes:
    """Decode ``path`` with the oracle CLI into raw ``fmt`` (s16le/s24le/s32le/f32le).

    This is the reference the engine must reproduce sample for sample: same decoder, same
    gapless trimming, same libswresample conversion into the output sample format. The command
    is exactly ``ffmpeg -v error -i SRC -f FMT -c:a pcm_FMT -``.
    """
    if fmt not in RAW_WIDTH:
        raise ValueError(f"unknown raw format {fmt!r}")
    cmd = [ORACLE, "-nostdin", "-v", "error", "-i", str(path)]
    cmd += ["-f", fmt, "-c:a", f"pcm_{fmt}", "-"]
    result = subprocess.run(cmd, capture_output=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"ffmpeg failed: {result.stderr.decode(errors='replace').strip()}")
    return result.stdout


def ffmpeg_pcm_many(requests: Sequence[tuple[Path, str]]) -> list[bytes]:
    """:func:`ffmpeg_pcm` for many files at once: one ffmpeg process, one output per input.

    Starting the CLI costs ~0.2 s (it links ~200 shared libraries), which would dominate a
    corpus of short files. Each output maps only its own input's first audio stream, the
    stream the single-file command picks for these one-audio-stream files.
    """
    if not requests:
        return []
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [ORACLE, "-nostdin", "-v", "error"]
        for path, _ in requests:
            cmd += ["-i", str(path)]
        outputs = []
        for index, (_, fmt) in enumerate(requests):
            if fmt not in RAW_WIDTH:
                raise ValueError(f"unknown raw format {fmt!r}")
            outputs.append(Path(tmp) / f"{index}.{fmt}")
            cmd += ["-map", f"{index}:a:0", "-f", fmt, "-c:a", f"pcm_{fmt}", str(outputs[-1])]
        result = subprocess.run(cmd, capture_output=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"ffmpeg failed: {result.stderr.decode(errors='replace').strip()}")
        return [output.read_bytes() for output in outputs]


def ffprobe(path: Path) -> dict[str, Any]:
    """ffprobe's JSON for the first audio stream and the format, tags included."""
    cmd = ["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams"]
    cmd += ["-select_streams", "a:0", str(path)]
    result = subprocess.run(cmd, capture_output=True, check=True)
    return dict(json.loads(result.stdout.decode("utf-8")))


def samples(raw: bytes, fmt: str, channels: int) -> np.ndarray:
    """Raw PCM bytes as an (n, channels) array; s24le is sign-extended into int32."""
    if fmt == "s24le":
        triples = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        values = triples[:, 0] | (triples[:, 1] << 8) | (triples[:, 2] << 16)
        values = np.where(values >= 1 << 23, values - (1 << 24), values)
        return values.reshape(-1, channels)
    dtype = {"s16le": "<i2", "s32le": "<i4", "f32le": "<f4"}[fmt]
    return np.frombuffer(raw, dtype=dtype).reshape(-1, channels)


# --------------------------------------------------------------------------- WAV reading


class WavFile(NamedTuple):
    """A parsed RIFF/RF64 WAVE file; ``chunks`` maps chunk ids to payloads in file order."""

    format_tag: int
    channels: int
    rate: int
    bits: int
    data: bytes
    chunks: dict[str, bytes]


def read_wav(path: Path) -> WavFile:
    """Walk the chunks of a RIFF or RF64 WAVE file, resolving ds64 sizes; checks the framing.

    Unlike ``wave``/``soundfile`` this sees everything the engine wrote: the exact format tag,
    the fmt extension, fact/LIST chunks and their order, and the RF64 size fields. Raises
    ``ValueError`` on any structural inconsistency (sizes, padding, truncation).
    """
    raw = Path(path).read_bytes()
    kind, riff_size, wave_id = struct.unpack_from("<4sI4s", raw)
    if kind not in (b"RIFF", b"RF64") or wave_id != b"WAVE":
        raise ValueError(f"not a WAVE file: {raw[:12]!r}")
    ds64: dict[str, int] = {}
    chunks: dict[str, bytes] = {}
    offset = 12
    while offset + 8 <= len(raw):
        chunk_id, size = struct.unpack_from("<4sI", raw, offset)
        name = chunk_id.decode("latin-1")
        if name == "data" and kind == b"RF64" and size == 0xFFFFFFFF:
            size = ds64["data"]
        if name in chunks:
            raise ValueError(f"duplicate {name!r} chunk")
        body = raw[offset + 8 : offset + 8 + size]
        if len(body) != size:
            raise ValueError(f"{name!r} chunk runs past the end of the file")
        chunks[name] = body
        if name == "ds64":
            riff64, data64, frames64 = struct.unpack_from("<QQQ", body)
            ds64 = {"riff": riff64, "data": data64, "frames": frames64}
        offset += 8 + size + (size & 1)  # chunks are padded to an even length
    if offset != len(raw) and offset - 1 != len(raw):
        raise ValueError("trailing bytes after the last chunk")
    real_riff = ds64["riff"] if kind == b"RF64" and riff_size == 0xFFFFFFFF else riff_size
    if real_riff != len(raw) - 8:
        raise ValueError(f"RIFF size {real_riff} but file has {len(raw) - 8} bytes after it")
    tag, channels, rate, byte_rate, align, bits = struct.unpack_from("<HHIIHH", chunks["fmt "])
    if align != channels * bits // 8 or byte_rate != rate * align:
        raise ValueError("inconsistent block align / byte rate")
    return WavFile(tag, channels, rate, bits, chunks["data"], chunks)


KSDATAFORMAT_PCM = bytes.fromhex("0100000000001000800000aa00389b71")
KSDATAFORMAT_FLOAT = bytes.fromhex("0300000000001000800000aa00389b71")


class Extensible(NamedTuple):
    """The WAVE_FORMAT_EXTENSIBLE part of a 40-byte fmt chunk."""

    valid_bits: int
    channel_mask: int
    subformat: bytes


def extensible(fmt_chunk: bytes) -> Extensible:
    """Parse cbSize=22 extension of an extensible fmt chunk."""
    cb_size, valid_bits, mask = struct.unpack_from("<HHI", fmt_chunk, 16)
    if cb_size != 22 or len(fmt_chunk) < 40:
        raise ValueError(f"not an extensible fmt chunk (cbSize {cb_size})")
    return Extensible(valid_bits, mask, fmt_chunk[24:40])


def info_tags(list_chunk: bytes) -> dict[str, str]:
    """Decode a LIST/INFO chunk into {INFO id: UTF-8 text} (NUL terminators stripped)."""
    if list_chunk[:4] != b"INFO":
        raise ValueError(f"LIST chunk of type {list_chunk[:4]!r}, not INFO")
    tags: dict[str, str] = {}
    offset = 4
    while offset + 8 <= len(list_chunk):
        tag_id, size = struct.unpack_from("<4sI", list_chunk, offset)
        value = list_chunk[offset + 8 : offset + 8 + size]
        tags[tag_id.decode("latin-1")] = value.rstrip(b"\0").decode("utf-8")
        offset += 8 + size + (size & 1)
    return tags


# Float samples at the edges of the integer conversions: exactly +-1.0, the largest float32
# below 1.0, values just beyond +-1.0, half-LSB ties at 16, 24 and 32 bits, overs, negative
# zero and a denormal. (Not NaN, inf or |x| >= 2**31: for those FFmpeg's own output depends
# on where the sample sits in its buffer, SIMD body or scalar tail, so there is no oracle.)
FLOAT_EDGES = np.array(
    [
        1.0, -1.0, np.nextafter(np.float32(1.0), np.float32(0.0)), -1.0000001, 1.0000001,
        32767.5 / 32768, 32767.49 / 32768, -32768.5 / 32768, -32768.49 / 32768,
        0.5 / 32768, 1.5 / 32768, 2.5 / 32768, -0.5 / 32768, -1.5 / 32768,
        0.5 / 2**31, 1.5 / 2**23, 127.5 / 2**31, 2.0, -2.0, 1000.0, -0.0, 1e-40,
    ],
    dtype=np.float32,
)  # fmt: skip


def make_float_edges(path: Path, rate: int = 44100) -> Path:
    """A stereo float WAV holding FLOAT_EDGES (left) and the same negated (right), 100 times.

    Converting it to 16/24/32-bit int must give exactly what ffmpeg's swresample gives,
    including its saturation and NaN/overflow quirks.
    """
    block = np.tile(np.stack([FLOAT_EDGES, -FLOAT_EDGES]), 100)
    return encode_blocks(Path(path), "pcm_f32le", [block], rate, 2)
