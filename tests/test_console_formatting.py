"""How the console shows lengths, sizes, containers and codecs (no server, no browser)."""

from __future__ import annotations

import pytest

from wavforge.console import formatting
from wavforge.core.states import WavStatus


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(None, "—"), (0, "0:00"), (30.0, "0:30"), (29.6, "0:30"), (245, "4:05"), (3723, "1:02:03")],
)
def test_durations_read_like_a_clock(seconds: float | None, shown: str) -> None:
    assert formatting.duration(seconds) == shown


@pytest.mark.parametrize(
    ("count", "shown"),
    [
        (1, "1 byte"),
        (900, "900 bytes"),
        (4_200, "4.2 KB"),
        (529_200, "529 KB"),
        (31_752_044, "31.8 MB"),
    ],
)
def test_sizes_in_decimal_units(count: int, shown: str) -> None:
    assert formatting.size(count) == shown


def test_containers_and_codecs_by_the_names_people_use() -> None:
    assert formatting.container("mov,mp4,m4a,3gp,3g2,mj2") == "MP4/M4A"
    assert formatting.container("mp3") == "MP3"
    assert formatting.container("dsf,other") == "DSF"
    assert formatting.codec("aac") == "AAC (Advanced Audio Coding)"
    assert formatting.codec("pcm_s24le") == "PCM, 24-bit signed integer, little-endian"
    assert formatting.codec("pcm_f32be") == "PCM, 32-bit floating point, big-endian"
    assert formatting.codec("tta") == "TTA"
    assert formatting.channels(2) == "2 (stereo)" and formatting.channels(6) == "6"


def test_the_analysis_shows_human_values_and_the_audio_data_size() -> None:
    rows = dict(
        formatting.analysis_rows(
            {
                "sourceCodec": "mp3float",
                "duration": 30.0,
                "frames": 1_323_000,
                "outputEncoding": "pcm_s16le",
                "outputChannels": 2,
                "outputBitDepth": 16,
                "sha256": "ab",
            }
        )
    )
    assert rows["Source codec"] == "MP3 (MPEG audio layer 3)"
    assert rows["Duration"] == "0:30 (30.000 s)"
    assert rows["WAV encoding"] == "PCM, 16-bit signed integer, little-endian"
    assert rows["WAV audio data"] == "5.3 MB"
    assert list(rows)[-2:] == ["WAV audio data", "SHA-256 of the WAV"]


def test_null_loudness_says_whether_it_was_measured() -> None:
    """Loudness is measured only when asked: null figures beside a peak are "not measured"."""
    names = ("peakDbfs", "truePeakDbtp", "integratedLoudness", "loudnessRange")

    def shown(*values: float | None) -> list[str]:
        rows = dict(formatting.analysis_rows(dict(zip(names, values, strict=True))))
        return [rows[label] for label in ("Peak level", "True peak", "Integrated loudness")] + [
            rows["Loudness range"]
        ]

    assert shown(-6.7, None, None, None) == ["-6.70 dBFS", *["not measured"] * 3]
    assert shown(None, None, None, None) == ["silent", "silent", "silent", "—"]
    assert shown(-80.0, -79.9, None, None) == [
        "-80.00 dBFS", "-79.90 dBTP", "below -70 LUFS (gated out)", "—"
    ]  # fmt: skip
    assert shown(-1.0, 0.3, -9.84, 5.1) == ["-1.00 dBFS", "+0.30 dBTP", "-9.8 LUFS", "5.1 LU"]


def test_counted_states_tell_the_two_failures_apart() -> None:
    labels = [formatting.state_label(status) for status in WavStatus]
    assert len(set(labels)) == len(labels)
    assert formatting.state_label("CREATE_TASK_FAILED") == "Failed to start"
    assert formatting.state_label(WavStatus.GENERATE_WAV_FAILED) == "Conversion failed"
