"""Hostile inputs: each ends in a clean failure of the right type, or, when it is merely
damaged audio, in exactly ffmpeg's partial decode. Nothing is ever left in the output folder.

"Clean" means: one of our exception types, a one-line message that names no server path, and
no output file (nor a temporary one) next to where the WAV would have gone. Files that name
other files (HLS playlists, ffconcat lists) must be refused without the named file being read:
a file's access time is the witness (see ``Victim``), and a loopback listener the witness for
network segments.
"""

from __future__ import annotations

import os
import re
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import av
import pytest

from wavforge.audio import AudioError, UnsupportedAudio, convert
from wavforge.audio.errors import LimitExceeded
from wavforge.audio.options import Limits, OutputOptions

from audiogen import ffmpeg_pcm, make_music, make_music_mp3, read_wav, tiny_png
from conftest import needs_two_cpus
from hostile import (
    empty_file,
    ffconcat_list,
    flac_decompression_bomb,
    flac_lying_streaminfo,
    hls_playlist,
    html_page,
    id3_giant_size,
    mp3_xing_claiming_hours,
    random_bytes,
    truncated,
    wav_claiming_hours,
)

QUICK_SECONDS = 10.0  # a refusal from the header must not take decoding time (generous: CI)
_ABSOLUTE_PATH = re.compile(r"(^|[\s'\"(=:])/[\w.-]+/")


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    """Where the WAV goes; must be empty again after every failed conversion."""
    directory = tmp_path / "out"
    directory.mkdir()
    return directory


def assert_clean_message(exc: BaseException, *private: str) -> None:
    """One line, non-empty, no server path, nothing from FFmpeg's internals attached."""
    message = str(exc)
    assert message and "\n" not in message and len(message) < 300, message
    assert not _ABSOLUTE_PATH.search(message), message
    for text in private:
        assert text not in message, message
    assert not isinstance(exc, av.error.FFmpegError)
    assert not isinstance(exc.__cause__, av.error.FFmpegError)


def refused(
    src: Path, out_dir: Path, kind: type[AudioError], **kwargs: Any
) -> tuple[AudioError, float]:
    """Convert expecting ``kind``; check nothing is left; return the error and the time taken."""
    started = time.monotonic()
    with pytest.raises(kind) as caught:
        convert(src, out_dir / "out.wav", **kwargs)
    elapsed = time.monotonic() - started
    assert sorted(os.listdir(out_dir)) == []
    assert_clean_message(caught.value, str(src.parent), str(out_dir))
    return caught.value, elapsed


# --------------------------------------------------------------------------- not audio


def _png(path: Path) -> Path:
    path.write_bytes(tiny_png(64))
    return path


NOT_AUDIO: list[Any] = [
    pytest.param(random_bytes, id="random-bytes"),
    pytest.param(empty_file, id="empty"),
    pytest.param(html_page, id="html-page"),
    pytest.param(id3_giant_size, id="id3-giant-size"),
    pytest.param(_png, id="png-image"),
]


@pytest.mark.parametrize("build", NOT_AUDIO)
def test_not_audio_is_unsupported(
    tmp_path: Path, out_dir: Path, build: Callable[[Path], Path]
) -> None:
    src = build(tmp_path / "upload.mp3")
    _, elapsed = refused(src, out_dir, UnsupportedAudio)
    assert elapsed < QUICK_SECONDS


# --------------------------------------------------------------------------- files naming files

PAST = 1_000_000_000  # an atime in 2001: relatime updates any atime older than a day on read


class Victim(NamedTuple):
    """Someone else's upload next to the hostile file; its atime shows whether it was read."""

    directory: Path
    song: Path
    reads_visible: bool  # False on noatime mounts: then the atime check is skipped

    def arm(self) -> None:
        os.utime(self.song, (PAST, self.song.stat().st_mtime))

    def was_read(self) -> bool:
        return self.song.stat().st_atime != PAST


@pytest.fixture
def victim(tmp_path: Path) -> Victim:
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    song = make_music_mp3(uploads / "song.mp3", 1.0)
    probe = Victim(uploads, song, reads_visible=True)
    probe.arm()
    song.read_bytes()
    victim = Victim(uploads, song, reads_visible=probe.was_read())
    victim.arm()
    return victim


LISTS: list[Any] = [
    pytest.param(hls_playlist, "list.mp3", ["{song}"], id="hls-named-mp3"),
    pytest.param(hls_playlist, "list.m3u8", ["{song}"], id="hls-absolute"),
    pytest.param(hls_playlist, "list.m3u8", ["song.mp3"], id="hls-relative"),
    pytest.param(hls_playlist, "list.m3u8", ["file://{song}"], id="hls-file-url"),
    pytest.param(hls_playlist, "list.m3u8", ["song.mp3", "/etc/passwd"], id="hls-etc-passwd"),
    # ffconcat's "safe" mode rejects absolute paths itself; relative names it opens.
    pytest.param(ffconcat_list, "list.mp3", ["song.mp3"], id="ffconcat-named-mp3"),
    pytest.param(ffconcat_list, "list.ffconcat", ["song.mp3"], id="ffconcat"),
    pytest.param(ffconcat_list, "list.mp3", ["song.mp3", "/etc/passwd"], id="ffconcat-passwd"),
]


@pytest.mark.parametrize(("build", "name", "targets"), LISTS)
def test_file_lists_are_refused_without_reading_the_target(
    victim: Victim,
    out_dir: Path,
    build: Callable[[Path, list[str]], Path],
    name: str,
    targets: list[str],
) -> None:
    """FFmpeg 8 opens an HLS playlist or ffconcat list and reads what it names (the ffmpeg
    5.1 CLI even when the playlist is called .mp3); the engine must refuse before that."""
    src = build(victim.directory / name, [t.format(song=victim.song) for t in targets])
    victim.arm()
    error, _ = refused(src, out_dir, UnsupportedAudio)
    assert "passwd" not in str(error) and "song" not in str(error)
    if victim.reads_visible:
        assert not victim.was_read(), "the file named in the list was opened"


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A loopback TCP port that records whether anything connected to it."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.setblocking(False)
    yield server
    server.close()


def _connected(server: socket.socket) -> bool:
    try:
        connection, _ = server.accept()
    except BlockingIOError:
        return False
    connection.close()
    return True


@pytest.mark.parametrize("name", ["list.m3u8", "list.mp3"])
def test_playlist_with_network_segments_opens_no_connection(
    tmp_path: Path, out_dir: Path, listener: socket.socket, name: str
) -> None:
    """FFmpeg already limits what a local file may open to file/crypto/data; this guards
    against an engine that ever widens its protocol whitelist."""
    port = listener.getsockname()[1]
    src = hls_playlist(tmp_path / name, [f"http://127.0.0.1:{port}/segment.mp3"])
    refused(src, out_dir, UnsupportedAudio)
    assert not _connected(listener)


# --------------------------------------------------------------------------- damaged audio


def assert_partial_decode(src: Path, out_dir: Path, rate: int) -> Any:
    """Convert damaged audio: exactly ffmpeg's partial decode, duration = what was decoded."""
    result = convert(src, out_dir / "out.wav")
    assert read_wav(out_dir / "out.wav").data == ffmpeg_pcm(src, "s16le")
    assert result.sample_rate == rate
    assert result.analysis.duration == pytest.approx(result.frames / rate, abs=1e-6)
    return result


def test_truncated_mp3_gives_ffmpegs_partial_decode(tmp_path: Path, out_dir: Path) -> None:
    """The Xing header still promises 3 s; only 40 % of the bytes are there."""
    whole = make_music_mp3(tmp_path / "whole.mp3", 3.0)
    src = truncated(whole, tmp_path / "cut.mp3", 0.4)
    result = assert_partial_decode(src, out_dir, 44100)
    assert 0.3 * 3.0 < result.analysis.duration < 0.45 * 3.0


def test_truncated_flac_gives_ffmpegs_partial_decode(tmp_path: Path, out_dir: Path) -> None:
    """The last, cut-off FLAC frame fails its CRC and is dropped, as ffmpeg drops it."""
    whole = make_music(tmp_path / "whole.flac", "flac", 3.0, sample_fmt="s16")
    src = truncated(whole, tmp_path / "cut.flac", 0.6)
    result = assert_partial_decode(src, out_dir, 44100)
    assert 0.4 * 3.0 < result.analysis.duration < 0.65 * 3.0


def test_wav_claiming_hours_is_the_half_second_it_holds(tmp_path: Path, out_dir: Path) -> None:
    """FFmpeg caps a WAV data size at the file's end, so a ~4 GiB claim over 88 kB is simply
    a truncated WAV: converted as ffmpeg decodes it, even under a one-minute limit."""
    src = wav_claiming_hours(tmp_path / "hours.wav")
    assert src.stat().st_size < 100_000
    result = convert(src, out_dir / "out.wav", limits=Limits(max_duration_seconds=60))
    assert read_wav(out_dir / "out.wav").data == ffmpeg_pcm(src, "s16le")
    assert result.frames == 22050
    assert result.analysis.duration == 0.5


def test_truncated_m4a_without_moov_is_unsupported(tmp_path: Path, out_dir: Path) -> None:
    """MP4 keeps its index at the end: cut off, there is nothing to decode (ffmpeg agrees)."""
    whole = make_music(tmp_path / "whole.m4a", "aac", 2.0)
    refused(truncated(whole, tmp_path / "cut.m4a", 0.5), out_dir, UnsupportedAudio)


# --------------------------------------------------------------------------- lying headers


@pytest.mark.parametrize(
    "options",
    [pytest.param(None, id="default"), pytest.param(OutputOptions(bit_depth=16), id="16")],
)
def test_flac_decompression_bomb_is_refused_from_the_header(
    tmp_path: Path, out_dir: Path, options: OutputOptions | None
) -> None:
    """An hour of 192 kHz 8-channel silence: ~0.5 MB of FLAC, 11-17 GB of WAV."""
    bomb = flac_decompression_bomb(tmp_path / "bomb.flac")
    assert bomb.stat().st_size < 1_000_000
    kwargs = {"options": options} if options else {}
    error, elapsed = refused(bomb, out_dir, LimitExceeded, **kwargs)
    assert "limit" in str(error).lower()
    assert elapsed < QUICK_SECONDS


@pytest.fixture
def liar(tmp_path: Path) -> Path:
    """120 s of 48 kHz stereo whose STREAMINFO says 2 s."""
    return flac_lying_streaminfo(tmp_path / "liar.flac", seconds=120.0, claimed_seconds=2.0)


def test_lying_flac_is_stopped_by_the_decoding_duration_guard(liar: Path, out_dir: Path) -> None:
    with av.open(str(liar)) as container:  # the header really does claim two seconds
        assert container.streams.audio[0].duration == 2 * 48000
    error, _ = refused(liar, out_dir, LimitExceeded, limits=Limits(max_duration_seconds=30))
    assert "limit" in str(error).lower()


def test_lying_flac_is_stopped_by_the_output_size_guard(liar: Path, out_dir: Path) -> None:
    """The header promises 384 kB of WAV; the writer stops at the 2 MB limit."""
    error, _ = refused(liar, out_dir, LimitExceeded, limits=Limits(max_output_bytes=2_000_000))
    assert "limit" in str(error).lower()


def test_lying_flac_within_limits_converts_in_full(liar: Path, out_dir: Path) -> None:
    """Control: the file is valid; its real length, not the claimed one, is what is written."""
    result = convert(liar, out_dir / "out.wav")
    assert result.frames == 120 * 48000
    assert result.analysis.duration == 120.0
    assert read_wav(out_dir / "out.wav").data == ffmpeg_pcm(liar, "s16le")


@pytest.fixture(scope="module")
def short_claim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """150 s of 16 kHz MPEG-2 mono whose Xing header claims 122 s: long enough to be split."""
    return mp3_xing_claiming_hours(
        tmp_path_factory.mktemp("xing") / "short-claim.mp3",
        frames=round(122 * 16000 / 576),
        seconds=150.3,
        rate=16000,
        channels=1,
        bit_rate=48_000,
    )


@needs_two_cpus
def test_parallel_decode_past_the_duration_limit_leaves_nothing(
    short_claim: Path, out_dir: Path, split_counts: list[int]
) -> None:
    """Header says 122 s (under the 140 s limit), decoding finds 150 s, in two processes."""
    limits = Limits(max_duration_seconds=140, parallelism=2)
    error, _ = refused(short_claim, out_dir, LimitExceeded, limits=limits)
    assert split_counts == [2]
    assert "limit" in str(error).lower()


@needs_two_cpus
def test_parallel_decode_of_understated_mp3_is_complete(
    short_claim: Path, out_dir: Path, split_counts: list[int]
) -> None:
    """Control: within limits, all 150.3 s are written, exactly as ffmpeg decodes them."""
    result = convert(short_claim, out_dir / "out.wav", limits=Limits(parallelism=2))
    assert split_counts == [2]
    assert result.frames == round(150.3 * 16000)
    assert read_wav(out_dir / "out.wav").data == ffmpeg_pcm(short_claim, "s16le")


def test_mp3_whose_xing_header_claims_hours_is_refused(tmp_path: Path, out_dir: Path) -> None:
    src = mp3_xing_claiming_hours(tmp_path / "xing.mp3")
    error, elapsed = refused(src, out_dir, LimitExceeded)
    assert "limit" in str(error).lower()
    assert elapsed < QUICK_SECONDS


# --------------------------------------------------------------------------- limits


@pytest.fixture
def song(tmp_path: Path) -> Path:
    """2 s of 44.1 kHz stereo: 352,800 bytes of 16-bit PCM, 705,600 as float."""
    return make_music_mp3(tmp_path / "song.mp3", 2.0)


def test_duration_limit_refuses_before_decoding(song: Path, out_dir: Path) -> None:
    error, _ = refused(song, out_dir, LimitExceeded, limits=Limits(max_duration_seconds=1.5))
    assert "limit" in str(error).lower()


@pytest.mark.parametrize(
    "options",
    [
        pytest.param(OutputOptions(bit_depth=32, sample_format="float"), id="float"),
        pytest.param(OutputOptions(bit_depth=24), id="24-bit"),
        pytest.param(OutputOptions(sample_rate=96000), id="96k"),
    ],
)
def test_output_size_limit_counts_width_and_rate(
    song: Path, out_dir: Path, options: OutputOptions
) -> None:
    """500 kB allows the default 16-bit output (353 kB) but not wider samples or more of them."""
    limits = Limits(max_output_bytes=500_000)
    error, _ = refused(song, out_dir, LimitExceeded, options=options, limits=limits)
    assert "limit" in str(error).lower()


def test_limits_just_above_the_file_let_it_through(song: Path, out_dir: Path) -> None:
    limits = Limits(max_duration_seconds=2.5, max_output_bytes=500_000)
    result = convert(song, out_dir / "out.wav", limits=limits)
    assert result.frames == 2 * 44100
    assert result.bytes_written < 500_000


def test_lying_flac_that_outgrows_riff_is_moved_into_rf64(liar: Path, out_dir: Path) -> None:
    """The header promised a small file, so no ds64 room was reserved; the data outgrew the
    (lowered) RF64 threshold anyway, so the writer makes room once, at the end."""
    threshold = 4_000_000  # 10x what the header promises, a fortieth of what is really there
    result = convert(liar, out_dir / "out.wav", limits=Limits(rf64_threshold_bytes=threshold))
    wav = read_wav(out_dir / "out.wav")
    assert (out_dir / "out.wav").read_bytes()[:4] == b"RF64"
    assert wav.data == ffmpeg_pcm(liar, "s16le")
    assert result.bytes_written == (out_dir / "out.wav").stat().st_size
    assert sorted(p.name for p in out_dir.iterdir()) == ["out.wav"]
