"""Waveform peaks over HTTP: measured in the conversion, exactly the written samples' extremes,
served only to the WAV's owner, deleted with the WAV; and the WAV streamed by byte ranges."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import soundfile

from audiogen import make_music
from conftest import Server, assert_envelope, import_file, wait_for_wav
from support.receiver import Receiver

GENERATE = "/api/v1/wav/generate"


def peaks_path(task_id: str) -> str:
    return f"/api/v1/account/wav-tasks/{task_id}/peaks"


def convert(api: httpx.Client, track_id: str, receiver: Receiver, **options: int) -> dict[str, Any]:
    answer = api.post(GENERATE, json={"audioId": track_id, "callBackUrl": receiver.url, **options})
    record = wait_for_wav(api, answer.json()["data"]["taskId"])
    assert record["successFlag"] == "SUCCESS", record
    return record


def top_eight_bits(wav: bytes) -> tuple[np.ndarray, int]:
    """Each written sample's top 8 bits (what audiowaveform's 8-bit data holds), and the rate."""
    samples, rate = soundfile.read(io.BytesIO(wav), dtype="int32", always_2d=True)
    return samples >> 24, rate  # soundfile puts 16- and 24-bit samples at the top of an int32


def expected_peaks(samples: np.ndarray, per_pixel: int) -> np.ndarray:
    """(pixels, channels, 2) min/max computed with numpy over the samples, the last pixel short."""
    pixels = -(-len(samples) // per_pixel)
    found = np.empty((pixels, samples.shape[1], 2), np.int64)
    for pixel in range(pixels):
        chunk = samples[pixel * per_pixel : (pixel + 1) * per_pixel]
        found[pixel, :, 0], found[pixel, :, 1] = chunk.min(axis=0), chunk.max(axis=0)
    return found


@pytest.fixture(scope="module")
def flac(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("peaks")
    return make_music(folder / "music.flac", "flac", 12.0, peak=0.9)


@pytest.mark.parametrize("options", [{}, {"bitDepth": 24}], ids=["16-bit", "24-bit"])
def test_peaks_are_the_min_and_max_of_the_written_samples(
    api: httpx.Client, flac: Path, receiver: Receiver, options: dict[str, int]
) -> None:
    track = import_file(api, flac)["tracks"][0]["id"]
    record = convert(api, track, receiver, **options)

    body = assert_envelope(api.get(peaks_path(record["taskId"])), 200)
    peaks = body["data"]
    assert set(peaks) == {
        "version", "channels", "sample_rate", "samples_per_pixel", "bits", "length", "data"
    }  # fmt: skip
    assert (peaks["version"], peaks["bits"], peaks["channels"]) == (2, 8, 2)
    assert peaks["sample_rate"] == 44100
    assert 1000 <= peaks["length"] <= 4096
    assert len(peaks["data"]) == peaks["length"] * peaks["channels"] * 2
    assert all(-128 <= value <= 127 for value in peaks["data"])

    samples, rate = top_eight_bits(httpx.get(record["response"]["audioWavUrl"]).content)
    assert rate == peaks["sample_rate"]
    per_pixel = peaks["samples_per_pixel"]
    assert peaks["length"] == -(-len(samples) // per_pixel)
    drawn = np.array(peaks["data"]).reshape(peaks["length"], peaks["channels"], 2)
    expected = expected_peaks(samples, per_pixel)
    assert np.array_equal(drawn, expected)
    assert drawn[:, :, 1].max() > 64  # a loud signal: the comparison is not of silence


def test_no_peaks_answer_404_in_the_envelope(
    server: Server, api: httpx.Client, flac: Path, receiver: Receiver
) -> None:
    track = import_file(api, flac)["tracks"][0]["id"]
    task = convert(api, track, receiver)["taskId"]
    assert_envelope(api.get(peaks_path(task)), 200)

    assert_envelope(api.get(peaks_path("no-such-task")), 404)
    assert_envelope(api.get(peaks_path("x" * 129)), 413)
    assert httpx.get(server.url + peaks_path(task)).status_code == 401
    with server.client(server.create_key()["key"]) as stranger:
        assert_envelope(stranger.get(peaks_path(task)), 404)  # another account's task

    # A WAV made before peaks were kept: its document is not there.
    (stored,) = server.stored(f"wav/{task}.peaks.json")
    server.storage().delete(stored)
    gone = assert_envelope(api.get(peaks_path(task)), 404)
    assert "no waveform peaks" in gone["msg"]


def test_peaks_go_with_the_wav(
    server: Server, api: httpx.Client, flac: Path, receiver: Receiver
) -> None:
    track = import_file(api, flac)["tracks"][0]["id"]
    task = convert(api, track, receiver)["taskId"]
    assert sorted(server.stored(f"wav/{task}.")) == [f"wav/{task}.peaks.json", f"wav/{task}.wav"]
    assert_envelope(api.delete(f"/api/v1/account/tracks/{track}"), 200)
    assert server.stored(f"wav/{task}.") == []
    assert_envelope(api.get(peaks_path(task)), 404)


def test_the_wav_streams_by_byte_ranges(api: httpx.Client, flac: Path, receiver: Receiver) -> None:
    track = import_file(api, flac)["tracks"][0]["id"]
    link = convert(api, track, receiver)["response"]["audioWavUrl"]
    whole = httpx.get(link).content
    size = len(whole)

    middle = httpx.get(link, headers={"Range": "bytes=1000-1999"})
    assert middle.status_code == 206 and middle.content == whole[1000:2000]
    assert middle.headers["content-range"] == f"bytes 1000-1999/{size}"
    assert middle.headers["content-length"] == "1000"
    assert middle.headers["content-type"] == "audio/wav"
    # A player's first request, open-ended, and a seek near the end.
    opened = httpx.get(link, headers={"Range": "bytes=0-"})
    assert opened.status_code == 206 and opened.content == whole
    seek = httpx.get(link, headers={"Range": f"bytes={size - 10}-{size + 100}"})
    assert seek.status_code == 206 and seek.content == whole[-10:]
    assert seek.headers["content-range"] == f"bytes {size - 10}-{size - 1}/{size}"

    for unsatisfiable in (
        f"bytes={size}-",
        f"bytes={size + 5}-{size + 9}",
        "bytes=20-10",
        "bytes=-0",
    ):
        refused = httpx.get(link, headers={"Range": unsatisfiable})
        assert refused.status_code == 416, unsatisfiable
        assert refused.headers["content-range"] == f"bytes */{size}"
        assert refused.content == b""
    # A header that is not a byte range is ignored, as RFC 9110 says: the whole file.
    for ignored in ("bytes=abc", "items=0-10", "bytes=0-1,5-6"):
        plain = httpx.get(link, headers={"Range": ignored})
        assert plain.status_code == 200 and plain.content == whole, ignored
