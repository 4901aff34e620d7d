"""Test helpers that synthesise small audio fixtures and read them back.

Fixtures are generated on the fly (a few seconds of tones plus seeded noise) instead of being
checked in, so the tests exercise the real encoders and stay reproducible without binary blobs.
"""

from __future__ import annotations

import subprocess
import wave
from pathlib import Path

import av
import numpy as np

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
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-f", "s16le", "-"]
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
