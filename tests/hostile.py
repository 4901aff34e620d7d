"""Builders for hostile inputs: files an attacker (or a broken client) might upload as "audio".

Each builder writes one file and returns its path. They are small on disk on purpose, even the
ones that claim (or really hold) hours of audio, because the point is to prove the engine
refuses them from the header, or stops early, instead of decoding and writing gigabytes.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from audiogen import make_music, make_music_mp3

# --------------------------------------------------------------------------- not audio at all


def random_bytes(path: Path, size: int = 64_000, seed: int = 42) -> Path:
    """Noise with an audio extension: nothing in it should be mistaken for a stream."""
    Path(path).write_bytes(np.random.default_rng(seed).bytes(size))
    return Path(path)


def empty_file(path: Path) -> Path:
    """A zero-byte upload."""
    Path(path).write_bytes(b"")
    return Path(path)


def html_page(path: Path) -> Path:
    """What a download of a "song URL" returns when it is really a login or error page."""
    page = (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>Sign in</title></head>\n"
        "<body><h1>Please sign in</h1><form action='/login' method='post'>"
        "<input name='user'><input type='password' name='pass'></form>\n"
        + "<p>Lorem ipsum dolor sit amet.</p>\n" * 200
        + "</body></html>\n"
    )
    Path(path).write_text(page, encoding="utf-8")
    return Path(path)


def id3_giant_size(path: Path, garbage: int = 2_000) -> Path:
    """An ID3v2 header declaring a ~256 MiB tag (syncsafe 0x7F7F7F7F) over a little garbage.

    A demuxer that trusts the size seeks or reads far past the end of the file; one that
    allocates it up front spends 256 MiB on a 2 kB upload.
    """
    header = b"ID3\x03\x00\x00\x7f\x7f\x7f\x7f"
    body = np.random.default_rng(7).bytes(garbage)
    Path(path).write_bytes(header + body)
    return Path(path)


# --------------------------------------------------------------------------- files naming files


def hls_playlist(path: Path, targets: Sequence[str]) -> Path:
    """An HLS media playlist whose segments are other files (local paths or file: URLs).

    Opened by FFmpeg's hls demuxer, it would read every segment it names: another user's
    upload, or anything else on the server that happens to be decodable.
    """
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:10", "#EXT-X-MEDIA-SEQUENCE:0"]
    for target in targets:
        lines += ["#EXTINF:10.0,", target]
    lines.append("#EXT-X-ENDLIST")
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Path(path)


def ffconcat_list(path: Path, targets: Sequence[str]) -> Path:
    """An ffconcat script; FFmpeg detects it by content, whatever the file is called."""
    lines = ["ffconcat version 1.0"] + [f"file '{target}'" for target in targets]
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Path(path)


# --------------------------------------------------------------------------- damaged audio


def truncated(source: Path, path: Path, keep: float = 0.4) -> Path:
    """The first ``keep`` share of ``source``'s bytes: an interrupted upload or download.

    For an MP3 the Xing header still announces the full length, so only decoding tells the
    real duration.
    """
    data = Path(source).read_bytes()
    Path(path).write_bytes(data[: int(len(data) * keep)])
    return Path(path)


# --------------------------------------------------------------------------- lying headers


def wav_claiming_hours(path: Path, data_size: int = 0xFFFFF000) -> Path:
    """A real half-second WAV whose RIFF and data sizes claim ~4 GiB (6.8 h at 44.1 kHz).

    0xFFFFFFFF is avoided on purpose: FFmpeg reads that value as "size unknown (streaming)".
    """
    make_music(path, "pcm_s16le", 0.5, rate=44100, channels=2)
    raw = bytearray(Path(path).read_bytes())
    data_at = raw.index(b"data")
    struct.pack_into("<I", raw, data_at + 4, data_size)
    struct.pack_into("<I", raw, 4, data_at + 4 + data_size)
    Path(path).write_bytes(bytes(raw))
    return Path(path)


def _crc16_lame(data: bytes) -> int:
    """CRC-16 (poly 0x8005, reflected, init 0) as used by the LAME tag's "info tag CRC"."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def mp3_xing_claiming_hours(
    path: Path,
    frames: int = 0x00FF_FFFF,
    *,
    seconds: float = 2.0,
    rate: int = 44100,
    channels: int = 2,
    bit_rate: int = 128_000,
) -> Path:
    """A CBR MP3 of ``seconds`` whose Xing/Info header claims ``frames`` MPEG frames.

    The default claim is ~121 h at 44.1 kHz; a claim below the real length makes a file that
    passes every header check and is only caught while decoding. The byte count stays true,
    so FFmpeg has no reason to distrust the frame count. FFmpeg ignores the LAME tag's CRC;
    it is recomputed anyway so stricter readers see a self-consistent header.
    """
    make_music_mp3(path, seconds, rate=rate, channels=channels, bit_rate=bit_rate, fast=True)
    raw = bytearray(Path(path).read_bytes())
    marker = max(raw.find(b"Xing"), raw.find(b"Info"))
    flags = struct.unpack_from(">I", raw, marker + 4)[0]
    if not flags & 1:
        raise RuntimeError("Xing header without a frame count")
    struct.pack_into(">I", raw, marker + 8, frames)
    frame_start = raw.rfind(b"\xff", 0, marker - 4)
    while raw[frame_start + 1] & 0xE0 != 0xE0:  # back up to the MPEG sync of this frame
        frame_start = raw.rfind(b"\xff", 0, frame_start)
    lame = raw.find(b"La", marker)  # "LAME" or "Lavf"/"Lavc" version string
    if lame != -1 and lame - frame_start < 200:
        # The LAME tag is 36 bytes; its last two bytes are a CRC of the frame up to them.
        crc_at = lame + 34
        struct.pack_into(">H", raw, crc_at, _crc16_lame(bytes(raw[frame_start:crc_at])))
    Path(path).write_bytes(bytes(raw))
    return Path(path)


# --------------------------------------------------------------------------- FLAC by hand
#
# FLAC stores digital silence as CONSTANT subframes: a few bytes per channel per block of up to
# 65535 samples. Writing the frames directly builds an hour of 192 kHz 8-channel 24-bit audio
# (16 GB as WAV) in a fraction of a second and well under a megabyte.

_FLAC_RATE_CODES = {88200: 1, 176400: 2, 192000: 3, 8000: 4, 16000: 5, 22050: 6, 24000: 7,
                    32000: 8, 44100: 9, 48000: 10, 96000: 11}  # fmt: skip
_FLAC_BPS_CODES = {8: 1, 12: 2, 16: 4, 20: 5, 24: 6, 32: 7}


def _crc8(data: bytes) -> int:
    """FLAC frame header CRC-8 (poly 0x07, init 0)."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def _crc16_table() -> list[int]:
    """Lookup table for FLAC's CRC-16 (poly 0x8005, not reflected)."""
    table = []
    for index in range(256):
        crc = index << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x8005) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
        table.append(crc)
    return table


_CRC16_TABLE = _crc16_table()


def _crc16(data: bytes) -> int:
    """FLAC frame footer CRC-16 (poly 0x8005, init 0, not reflected)."""
    crc = 0
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC16_TABLE[(crc >> 8) ^ byte]
    return crc


def _utf8_number(value: int) -> bytes:
    """FLAC's UTF-8-style coding of the frame number (up to 31 bits)."""
    if value < 0x80:
        return bytes([value])
    payload = []
    while True:
        payload.insert(0, 0x80 | (value & 0x3F))
        value >>= 6
        lead_bits = 6 - len(payload)  # bits left for the value in the lead byte
        if value < 1 << lead_bits:
            lead = (0xFF << (7 - len(payload))) & 0xFF
            return bytes([lead | value, *payload])


def _streaminfo(block: int, rate: int, channels: int, bits: int, total: int) -> bytes:
    """The 34-byte STREAMINFO body; frame sizes and MD5 left as 0 ("unknown")."""
    packed = (rate << 44) | ((channels - 1) << 41) | ((bits - 1) << 36) | total
    return struct.pack(">HH3s3sQ16s", block, block, b"\0\0\0", b"\0\0\0", packed, b"\0" * 16)


def flac_silence(
    path: Path,
    seconds: float,
    *,
    rate: int = 192_000,
    channels: int = 8,
    bits: int = 24,
    block: int = 65_535,
    claimed_seconds: float | None = None,
) -> Path:
    """Digital silence as a hand-written FLAC stream; ``claimed_seconds`` lies in STREAMINFO.

    Every frame holds ``block`` samples per channel as CONSTANT-zero subframes. With the
    defaults an hour of audio (16.6 GB as 24-bit WAV) takes about 0.5 MB.
    """
    total = round(seconds * rate)
    claimed = total if claimed_seconds is None else round(claimed_seconds * rate)
    out = bytearray(b"fLaC")
    out += bytes([0x80, 0, 0, 34]) + _streaminfo(block, rate, channels, bits, claimed)
    chan_bps = ((channels - 1) << 4) | (_FLAC_BPS_CODES[bits] << 1)
    subframes = (b"\x00" + b"\0" * ((bits + 7) // 8)) * channels  # CONSTANT type, value 0
    if bits % 8:
        raise ValueError("only byte-aligned sample sizes keep the subframes byte-aligned")
    for number, start in enumerate(range(0, total, block)):
        size = min(block, total - start)
        header = bytes([0xFF, 0xF8, (0x7 << 4) | _FLAC_RATE_CODES[rate], chan_bps])
        header += _utf8_number(number) + struct.pack(">H", size - 1)
        header += bytes([_crc8(header)])
        frame = header + subframes
        out += frame + struct.pack(">H", _crc16(frame))
    Path(path).write_bytes(bytes(out))
    return Path(path)


def flac_decompression_bomb(path: Path, minutes: float = 60.0) -> Path:
    """192 kHz, 8 channels, 24 bit, ``minutes`` of silence: ~0.5 MB in, 16.6 GB of WAV out."""
    return flac_silence(path, minutes * 60.0)


def flac_lying_streaminfo(
    path: Path, seconds: float = 120.0, claimed_seconds: float = 2.0, rate: int = 48_000
) -> Path:
    """A stereo 16-bit FLAC holding ``seconds`` of audio whose STREAMINFO says far less.

    Only a guard that counts decoded samples catches it: every header check passes.
    """
    return flac_silence(
        path, seconds, rate=rate, channels=2, bits=16, block=4096, claimed_seconds=claimed_seconds
    )


# --------------------------------------------------------------------------- costly to open


def ape_claiming_frames(path: Path, frames: int) -> Path:
    """A Monkey's Audio header that claims ``frames`` frames, with the zero-filled seek table
    FFmpeg insists on (four bytes a frame) and hardly any audio. Opening it makes the demuxer
    allocate a frame table for every claimed frame: 30 million cost FFmpeg about 1.6 GB,
    before a single sample is decoded. Written in 1 MiB pieces, never held in memory."""
    seek_table = frames * 4
    descriptor = b"MAC " + struct.pack("<HH7I", 3990, 0, 52, 24, seek_table, 0, 1000, 0, 0)
    header = struct.pack("<HHIIIHHI", 2000, 0, 73728, 1000, frames, 16, 2, 44100)
    zeros = bytes(1 << 20)
    with Path(path).open("wb") as out:
        out.write(descriptor + bytes(16) + header)
        for offset in range(0, seek_table, len(zeros)):
            out.write(zeros[: min(len(zeros), seek_table - offset)])
        out.write(bytes(1000))
    return Path(path)
