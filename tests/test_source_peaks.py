"""A source's waveform peaks over HTTP: measured by a worker a moment after the import,
exactly the extremes of the decoded source, served only to the track's owner, deleted with
the track."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile

from test_peaks import expected_peaks

from conftest import Server, assert_envelope, import_file, wait_for_source_peaks

RATE = 44_100
SECONDS = 6  # the shared server takes uploads up to 4 MB


def peaks_path(track_id: str) -> str:
    return f"/api/v1/account/tracks/{track_id}/peaks"


def signal(bits: int) -> np.ndarray:
    """Two channels of full-range noise under a slow swell, as integers of ``bits`` bits: a
    waveform whose every pixel differs, with values up to the top of the range."""
    rng = np.random.default_rng(bits)
    frames = RATE * SECONDS
    swell = 0.2 + 0.8 * np.abs(np.sin(np.linspace(0, 3 * np.pi, frames)))[:, None]
    top = 2 ** (bits - 1) - 1
    return np.round(rng.uniform(-1, 1, (frames, 2)) * swell * top).astype(np.int32)


@pytest.fixture(scope="module", params=[16, 24], ids=["16-bit", "24-bit"])
def source(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A FLAC whose decoded samples are exactly :func:`signal`'s (lossless)."""
    bits = request.param
    target = tmp_path_factory.mktemp("source-peaks") / f"noise-{bits}.flac"
    # soundfile scales integers by their type: int32 samples at the top of the word.
    soundfile.write(target, signal(bits) << (32 - bits), RATE, subtype=f"PCM_{bits}")
    return target


def test_source_peaks_are_the_min_and_max_of_the_decoded_source(
    api: httpx.Client, source: Path
) -> None:
    track = import_file(api, source)["tracks"][0]["id"]
    peaks = wait_for_source_peaks(api, track)

    assert (peaks["version"], peaks["bits"], peaks["channels"]) == (2, 8, 2)
    assert peaks["sample_rate"] == RATE
    bits = soundfile.info(str(source)).subtype.removeprefix("PCM_")
    samples = signal(int(bits)) >> (int(bits) - 8)  # each sample's top eight bits
    per_pixel = peaks["samples_per_pixel"]
    assert per_pixel == max(256, -(-len(samples) // 2048))  # the header told the length
    assert peaks["length"] == -(-len(samples) // per_pixel)
    assert len(peaks["data"]) == peaks["length"] * 2 * 2
    drawn = np.array(peaks["data"]).reshape(peaks["length"], 2, 2)
    assert np.array_equal(drawn, expected_peaks(samples, per_pixel))
    assert drawn[:, :, 1].max() > 100 and drawn[:, :, 0].min() < -100  # not of silence


def test_source_peaks_are_the_owners_only(server: Server, api: httpx.Client, source: Path) -> None:
    track = import_file(api, source)["tracks"][0]["id"]
    wait_for_source_peaks(api, track)

    assert_envelope(api.get(peaks_path("no-such-track")), 404)
    assert_envelope(api.get(peaks_path("x" * 129)), 413)
    assert httpx.get(server.url + peaks_path(track)).status_code == 401
    with server.client(server.create_key()["key"]) as stranger:
        assert_envelope(stranger.get(peaks_path(track)), 404)  # another account's track


def test_source_peaks_go_with_the_track(server: Server, api: httpx.Client, source: Path) -> None:
    track = import_file(api, source)["tracks"][0]["id"]
    wait_for_source_peaks(api, track)
    stored = sorted(server.stored(f"sources/{track}."))
    assert stored == [f"sources/{track}.flac", f"sources/{track}.peaks.json"]

    assert_envelope(api.delete(f"/api/v1/account/tracks/{track}"), 200)
    assert server.stored(f"sources/{track}.") == []
    gone = assert_envelope(api.get(peaks_path(track)), 404)
    assert "no track" in gone["msg"]
