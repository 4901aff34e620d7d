"""Tests for the audio engine: real files encoded on the fly, checked against the ffmpeg CLI."""

from __future__ import annotations

import os
import struct
import subprocess
import time
import wave
from pathlib import Path

import av
import numpy as np
import pytest

import wavforge.audio as audio
from wavforge.audio import (
    AudioError,
    AudioInfo,
    ConversionFailed,
    ConversionResult,
    LimitExceeded,
    Limits,
    OutputOptions,
    UnsupportedAudio,
    convert,
    probe,
)
from wavforge.audio.formats import OutputFormat
from wavforge.audio.samples import Batcher
from wavforge.audio.wavfile import WavWriter

from audiogen import (
    ffmpeg_pcm,
    ffmpeg_s16,
    make_audio,
    make_flac,
    make_mp3,
    make_wav,
    read_wav,
    wav_pcm_bytes,
)
from conftest import needs_two_cpus

HEADER_SIZE = 44  # canonical PCM header: RIFF, fmt (16 bytes), data


def to_s16le(frame: av.AudioFrame) -> bytes:
    """Run one frame through the engine's sample converter to 16-bit."""
    channels = len(frame.layout.channels)
    out = bytearray()
    target = OutputFormat(16, False, frame.sample_rate, channels, 0)
    name = frame.format.name
    batcher = Batcher(name.removesuffix("p"), frame.format.is_planar, target, out.extend)
    batcher.add(frame)
    batcher.finish()
    return bytes(out)


class Abort(Exception):
    """Stands in for the worker's 'lease lost' exception."""


def assert_matches_ffmpeg(src: Path, dst: Path) -> ConversionResult:
    """Convert ``src`` to 16-bit and check it against ``ffmpeg -f s16le`` sample for sample."""
    result = convert(src, dst, options=OutputOptions(bit_depth=16))
    wav = read_wav(dst)
    channels, rate, data = wav.channels, wav.rate, wav.data
    reference = ffmpeg_s16(src)
    assert len(data) == len(reference)
    assert data == reference
    assert (channels, rate) == (result.channels, result.sample_rate)
    assert result.frames == len(reference) // (2 * channels)
    assert result.bytes_written == dst.stat().st_size
    return result


def assert_clean_error(exc: BaseException, tmp_path: Path) -> None:
    """Errors are ours, one line, path-free, and carry no PyAV exception along."""
    assert isinstance(exc, AudioError)
    assert not isinstance(exc, av.error.FFmpegError)
    message = str(exc)
    assert message and "\n" not in message
    assert str(tmp_path) not in message
    assert exc.__cause__ is None or not isinstance(exc.__cause__, av.error.FFmpegError)


# --------------------------------------------------------------------------- bit exactness


@pytest.mark.parametrize(
    ("kwargs", "rate", "channels"),
    [
        pytest.param({}, 44100, 2, id="cbr320-stereo-44k1"),
        pytest.param({"vbr": True}, 44100, 2, id="vbr-stereo-44k1"),
        pytest.param({"rate": 22050, "channels": 1, "bitrate": 64_000}, 22050, 1, id="mono-22k05"),
        pytest.param({"rate": 48000}, 48000, 2, id="cbr320-stereo-48k"),
        pytest.param({"loud": True}, 44100, 2, id="loud-clipping"),
    ],
)
def test_mp3_is_bit_identical_to_ffmpeg(
    tmp_path: Path, kwargs: dict[str, object], rate: int, channels: int
) -> None:
    src = make_mp3(tmp_path / "in.mp3", **kwargs)  # type: ignore[arg-type]
    result = assert_matches_ffmpeg(src, tmp_path / "out.wav")
    assert (result.sample_rate, result.channels) == (rate, channels)
    # Gapless trimming applied: exactly the synthesised 3 s, no encoder delay or padding.
    assert result.frames == 3 * rate


def test_loud_mp3_really_clips(tmp_path: Path) -> None:
    src = make_mp3(tmp_path / "loud.mp3", loud=True)
    convert(src, tmp_path / "out.wav")
    samples = np.frombuffer(wav_pcm_bytes(tmp_path / "out.wav")[3], dtype="<i2")
    assert np.count_nonzero(samples == 32767) > 100
    assert np.count_nonzero(samples == -32768) > 100


def test_flac_16bit_is_bit_identical(tmp_path: Path) -> None:
    src = make_flac(tmp_path / "in.flac")
    result = assert_matches_ffmpeg(src, tmp_path / "out.wav")
    assert result.frames == 2 * 44100
    # Lossless 16-bit in, 16-bit out: the samples are the encoder input, untouched.
    with av.open(str(src)) as container:
        first = next(container.decode(audio=0)).to_ndarray().reshape(-1)
    out = np.frombuffer(wav_pcm_bytes(tmp_path / "out.wav")[3], dtype="<i2")
    assert np.array_equal(out[: first.size], first)


@pytest.mark.parametrize("codec", ["pcm_u8", "pcm_s24le", "pcm_s32le", "pcm_f32le", "pcm_f64le"])
def test_pcm_wav_sample_formats_are_bit_identical(tmp_path: Path, codec: str) -> None:
    """u8, s32 (24/32-bit), flt and dbl decoder outputs all convert like swresample."""
    src = make_wav(tmp_path / f"{codec}.wav", codec=codec)
    assert_matches_ffmpeg(src, tmp_path / "out.wav")


@pytest.mark.parametrize(("codec", "suffix"), [("alac", "m4a"), ("wavpack", "wv")])
def test_planar_integer_decoders_are_bit_identical(tmp_path: Path, codec: str, suffix: str) -> None:
    """ALAC decodes to s32p and WavPack to s16p: planar integer paths."""
    src = make_audio(tmp_path / f"in.{suffix}", codec, 1.0)
    assert_matches_ffmpeg(src, tmp_path / "out.wav")


def test_six_channel_float_wav_is_bit_identical(tmp_path: Path) -> None:
    src = make_audio(tmp_path / "surround.wav", "pcm_f32le", 0.5, channels=6, loud=True)
    result = assert_matches_ffmpeg(src, tmp_path / "out.wav")
    assert result.channels == 6


def test_wild_float64_samples_match_ffmpeg(tmp_path: Path) -> None:
    """NaN, inf and absurd magnitudes in f64 PCM follow FFmpeg's lrint/int truncation."""
    signal = np.zeros((2, 2000), dtype=np.float64)
    signal[0, :8] = [np.nan, np.inf, -np.inf, 1e10, -1e10, 65536.9, -70000.3, 1.5]
    signal[1, 100:104] = [1e20, 3e9, -0.99999, 0.5]
    src = make_audio(tmp_path / "wild.wav", "pcm_f64le", signal=signal)
    assert_matches_ffmpeg(src, tmp_path / "out.wav")


def test_to_s16le_rounding_and_saturation_for_float32() -> None:
    """Half-way values round to even; out-of-range and non-finite saturate like cvtps2dq."""
    values = np.array(
        [[0.5 / 32768, 1.5 / 32768, -0.5 / 32768, 1.0, -1.0, 2.0, np.nan, np.inf, 1e10]],
        dtype=np.float32,
    )
    frame = av.AudioFrame.from_ndarray(values, format="flt", layout="mono")
    out = np.frombuffer(to_s16le(frame), dtype="<i2").tolist()
    assert out == [0, 2, 0, 32767, -32768, 32767, -32768, -32768, -32768]


def test_concatenated_mp3_with_junk_matches_ffmpeg(tmp_path: Path) -> None:
    """ffmpeg skips packets the decoder rejects (the second file's ID3 tag); so must we."""
    first = make_mp3(tmp_path / "a.mp3", 1.0, title="A")
    second = make_mp3(tmp_path / "b.mp3", 1.0, title="B", loud=True)
    joined = tmp_path / "joined.mp3"
    joined.write_bytes(first.read_bytes() + second.read_bytes())
    result = assert_matches_ffmpeg(joined, tmp_path / "out.wav")
    assert result.frames > 44100


@needs_two_cpus
def test_parts_that_do_not_join_up_are_decoded_again_in_one_piece(
    tmp_path: Path, split_counts: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second file's tag, mid-way, is a packet the decoder rejects: the first part then
    writes one frame fewer than the timestamps promise, so the parts would leave a gap."""
    first = make_mp3(tmp_path / "a.mp3", 70.0, title="A", channels=1, bitrate=64_000)
    second = make_mp3(tmp_path / "b.mp3", 70.0, title="B", channels=1, bitrate=64_000)
    joined = tmp_path / "joined.mp3"
    joined.write_bytes(first.read_bytes() + second.read_bytes())
    rewinds: list[int] = []
    rewind = WavWriter.rewind

    def spy(writer: WavWriter) -> None:
        rewinds.append(writer.data_bytes)
        rewind(writer)

    monkeypatch.setattr(WavWriter, "rewind", spy)
    result = convert(joined, tmp_path / "out.wav", limits=Limits(parallelism=2))
    assert split_counts == [2]
    assert len(rewinds) == 1 and rewinds[0] > 0  # the parallel attempt ran, then was redone
    assert read_wav(tmp_path / "out.wav").data == ffmpeg_pcm(joined, "s16le")
    assert result.frames * 2 == len(ffmpeg_pcm(joined, "s16le"))
    assert sorted(os.listdir(tmp_path)) == ["a.mp3", "b.mp3", "joined.mp3", "out.wav"]


# --------------------------------------------------------------------------- output file


def test_output_is_a_plain_pcm_wav(tmp_path: Path) -> None:
    src = make_mp3(tmp_path / "in.mp3", 1.0)
    dst = tmp_path / "out.wav"
    result = convert(src, dst)
    with wave.open(str(dst), "rb") as wav:
        assert wav.getcomptype() == "NONE"
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (2, 2, 44100)
        assert wav.getnframes() == result.frames == 44100
    raw = dst.read_bytes()
    riff, riff_size, fmt_size, tag, data_size = struct.unpack_from("<4sI8xIH18xI", raw)
    assert (riff, fmt_size, tag) == (b"RIFF", 16, 1)
    assert raw[36:40] == b"data"
    assert riff_size == len(raw) - 8
    assert data_size == len(raw) - HEADER_SIZE == result.frames * 4


def test_wav_writer_refuses_to_exceed_limit_and_removes_file(tmp_path: Path) -> None:
    dst = tmp_path / "big.wav"
    fmt = OutputFormat(16, False, 44100, 2, 3)
    with (
        pytest.raises(LimitExceeded, match="exceed the limit"),
        WavWriter(dst, fmt, max_file_bytes=HEADER_SIZE + 8) as w,
    ):
        w.write(b"\0" * 4)
        w.write(b"\0" * 8)
    assert not dst.exists()


def test_output_path_that_is_not_a_regular_file_is_left_alone(tmp_path: Path) -> None:
    src = make_mp3(tmp_path / "in.mp3", 1.0)
    target = tmp_path / "a-directory"
    target.mkdir()
    with pytest.raises(ConversionFailed, match="not a regular file"):
        convert(src, target)
    assert target.is_dir()


# --------------------------------------------------------------------------- progress


def test_progress_is_monotonic_and_ends_at_one(tmp_path: Path) -> None:
    src = make_mp3(tmp_path / "in.mp3")
    seen: list[float] = []
    convert(src, tmp_path / "out.wav", progress=seen.append, progress_interval=0)
    assert len(seen) > 10
    assert all(0.0 <= v <= 1.0 for v in seen)
    assert seen == sorted(seen)
    assert seen[-1] == 1.0
    assert seen.count(1.0) == 1
    assert seen[len(seen) // 2] == pytest.approx(0.5, abs=0.1)


def test_progress_without_known_duration_falls_back_to_bytes(tmp_path: Path) -> None:
    """Matroska written to a pipe has no duration; progress then follows the bytes read."""
    flac = make_flac(tmp_path / "in.flac", 3.0)
    streamed = tmp_path / "streamed.mka"
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(flac), "-c:a", "flac", "-f", "matroska"]
    with streamed.open("wb") as out:
        subprocess.run([*cmd, "-"], stdout=out, check=True)
    assert probe(streamed).duration == 0.0
    seen: list[float] = []
    assert_matches_ffmpeg(streamed, tmp_path / "out.wav")
    convert(streamed, tmp_path / "out.wav", progress=seen.append, progress_interval=0)
    assert seen == sorted(seen) and seen[-1] == 1.0
    assert 0.3 < seen[len(seen) // 2] < 0.7


def test_progress_is_throttled_by_default(tmp_path: Path) -> None:
    src = make_mp3(tmp_path / "in.mp3")
    seen: list[float] = []
    started = time.monotonic()
    convert(src, tmp_path / "out.wav", progress=seen.append)
    elapsed = time.monotonic() - started
    assert seen[-1] == 1.0
    assert len(seen) <= elapsed / 0.2 + 2


def test_progress_exception_mid_way_propagates_and_removes_output(tmp_path: Path) -> None:
    src = make_mp3(tmp_path / "in.mp3")
    dst = tmp_path / "out.wav"
    abort = Abort("lease lost")
    calls: list[float] = []

    def progress(fraction: float) -> None:
        calls.append(fraction)
        if len(calls) == 3:
            raise abort

    with pytest.raises(Abort) as caught:
        convert(src, dst, progress=progress, progress_interval=0)
    assert caught.value is abort
    assert calls[-1] < 1.0
    assert not dst.exists()


def test_progress_exception_at_completion_still_removes_output(tmp_path: Path) -> None:
    src = make_mp3(tmp_path / "in.mp3", 1.0)
    dst = tmp_path / "out.wav"

    def progress(fraction: float) -> None:
        if fraction == 1.0:
            raise Abort("late")

    with pytest.raises(Abort, match="late"):
        convert(src, dst, progress=progress)
    assert not dst.exists()


# --------------------------------------------------------------------------- probe


def test_probe_mp3_fields(tmp_path: Path) -> None:
    src = make_mp3(tmp_path / "in.mp3", title="Ünïcode Title", artist="Some Artist")
    info = probe(src)
    assert isinstance(info, AudioInfo)
    assert (info.format_name, info.codec) == ("mp3", "mp3")
    assert (info.sample_rate, info.channels) == (44100, 2)
    assert info.duration == pytest.approx(3.0, abs=0.05)
    assert info.bit_rate == 320_000
    assert info.lossless is False
    assert info.tags["title"] == "Ünïcode Title"
    assert info.tags["artist"] == "Some Artist"
    assert set(info.tags) <= {"title", "artist", "album", "genre", "date", "comment"}


def test_probe_mono_vbr_and_flac(tmp_path: Path) -> None:
    mono = probe(make_mp3(tmp_path / "mono.mp3", rate=22050, channels=1, bitrate=64_000))
    assert (mono.sample_rate, mono.channels, mono.tags) == (22050, 1, {})
    vbr = probe(make_mp3(tmp_path / "vbr.mp3", vbr=True))
    assert vbr.bit_rate is not None and vbr.duration == pytest.approx(3.0, abs=0.05)
    flac = probe(make_flac(tmp_path / "in.flac"))
    assert (flac.format_name, flac.codec, flac.lossless) == ("flac", "flac", True)
    assert flac.duration == pytest.approx(2.0, abs=0.05)
    pcm = probe(make_wav(tmp_path / "in.wav", codec="pcm_s24le"))
    assert (pcm.codec, pcm.lossless) == ("pcm_s24le", True)


def test_probe_text_file_is_unsupported(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("just some words\nnothing to hear here\n")
    with pytest.raises(UnsupportedAudio, match="not an audio file") as caught:
        probe(text)
    assert_clean_error(caught.value, tmp_path)


@pytest.mark.parametrize("keep", [0, 150])
def test_probe_truncated_mp3_is_unsupported(tmp_path: Path, keep: int) -> None:
    whole = make_mp3(tmp_path / "whole.mp3", 1.0).read_bytes()
    stub = tmp_path / "stub.mp3"
    stub.write_bytes(whole[:keep])
    with pytest.raises(UnsupportedAudio) as caught:
        probe(stub)
    assert_clean_error(caught.value, tmp_path)


def test_probe_random_bytes_named_mp3_is_unsupported(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp3"
    junk.write_bytes(np.random.default_rng(42).bytes(64_000))
    with pytest.raises(UnsupportedAudio) as caught:
        probe(junk)
    assert_clean_error(caught.value, tmp_path)


def test_probe_valid_header_then_garbage_is_undecodable(tmp_path: Path) -> None:
    """The container parses, but no frame decodes: refused by probe, not later by the worker."""
    header = make_mp3(tmp_path / "whole.mp3", 1.0).read_bytes()[:600]
    fake = tmp_path / "fake.mp3"
    fake.write_bytes(header + np.random.default_rng(3).bytes(200_000))
    with pytest.raises(UnsupportedAudio, match="could not be decoded") as caught:
        probe(fake)
    assert_clean_error(caught.value, tmp_path)


def test_probe_refuses_missing_directory_and_fifo(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedAudio, match="does not exist"):
        probe(tmp_path / "missing.mp3")
    with pytest.raises(UnsupportedAudio, match="not a regular file"):
        probe(tmp_path)
    fifo = tmp_path / "pipe.mp3"
    os.mkfifo(fifo)
    with pytest.raises(UnsupportedAudio, match="not a regular file"):
        probe(fifo)


def test_protocol_looking_names_are_read_as_local_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A relative file called 'pipe:0' is that file, never FFmpeg's stdin protocol."""
    make_mp3(tmp_path / "song.mp3", 1.0).rename(tmp_path / "pipe:0")
    monkeypatch.chdir(tmp_path)
    assert probe(Path("pipe:0")).codec == "mp3"


def test_file_lists_are_refused(tmp_path: Path) -> None:
    """An ffconcat list would make FFmpeg read other files next to the upload."""
    make_mp3(tmp_path / "someone_elses.mp3", 1.0)
    listing = tmp_path / "upload.ffconcat"
    listing.write_text("ffconcat version 1.0\nfile someone_elses.mp3\n")
    with pytest.raises(UnsupportedAudio, match="not accepted"):
        probe(listing)
    with pytest.raises(UnsupportedAudio):
        convert(listing, tmp_path / "out.wav")
    assert not (tmp_path / "out.wav").exists()


# --------------------------------------------------------------------------- convert failures


def test_convert_garbage_raises_and_leaves_nothing(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp3"
    junk.write_bytes(b"ID3" + np.random.default_rng(7).bytes(50_000))
    dst = tmp_path / "out.wav"
    with pytest.raises(AudioError) as caught:
        convert(junk, dst)
    assert_clean_error(caught.value, tmp_path)
    assert not dst.exists()


def test_convert_mostly_corrupt_mp3_fails_part_way_and_leaves_nothing(tmp_path: Path) -> None:
    """A decodable start followed by junk: ffmpeg itself exits non-zero (error rate > 2/3)."""
    head = make_mp3(tmp_path / "whole.mp3", 1.0).read_bytes()[:4000]
    broken = tmp_path / "broken.mp3"
    broken.write_bytes(head + np.random.default_rng(5).bytes(200_000))
    dst = tmp_path / "out.wav"
    with pytest.raises(ConversionFailed, match="too much of the audio is corrupt") as caught:
        convert(broken, dst)
    assert_clean_error(caught.value, tmp_path)
    assert not dst.exists()


def test_convert_refuses_sample_rate_change_mid_stream(tmp_path: Path) -> None:
    first = make_mp3(tmp_path / "a.mp3", 1.0)
    second = make_mp3(tmp_path / "b.mp3", 1.0, rate=48000)
    joined = tmp_path / "joined.mp3"
    joined.write_bytes(first.read_bytes() + second.read_bytes())
    dst = tmp_path / "out.wav"
    with pytest.raises(ConversionFailed, match="changes part-way") as caught:
        convert(joined, dst)
    assert_clean_error(caught.value, tmp_path)
    assert not dst.exists()


def test_convert_missing_source_leaves_existing_destination_alone(tmp_path: Path) -> None:
    dst = tmp_path / "out.wav"
    dst.write_bytes(b"previous")
    with pytest.raises(UnsupportedAudio):
        convert(tmp_path / "missing.mp3", dst)
    assert dst.read_bytes() == b"previous"


def test_public_surface(tmp_path: Path) -> None:
    assert set(audio.__all__) >= {
        "AudioError",
        "UnsupportedAudio",
        "ConversionFailed",
        "AudioInfo",
        "ConversionResult",
        "probe",
        "convert",
    }
    assert issubclass(UnsupportedAudio, AudioError)
    assert issubclass(ConversionFailed, AudioError)
    result = convert(make_mp3(tmp_path / "in.mp3", 0.5), tmp_path / "out.wav")
    assert isinstance(result, ConversionResult)
    with pytest.raises(AttributeError):
        result.frames = 2  # type: ignore[misc]
