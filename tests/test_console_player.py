"""The console's player on an hour-long 24-bit WAV, in Chromium: it draws the waveform from the
server's peaks and streams the audio by byte ranges, so the page's memory does not depend on
the track's length (the old player downloaded and decoded the whole file: hundreds of MB).
The source's player draws the source's peaks, or a flat line while it has none."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from playwright.sync_api import Page, Request, expect

from test_console import browser, page, sign_in  # noqa: F401 (the journey's fixtures)

from audiogen import encode_blocks, make_music
from conftest import Server, import_file, wait_for_source_peaks, wait_for_wav, wait_until
from support.receiver import Receiver

# The player is the console's, over the same core as the API, which is tested in both modes.
pytestmark = pytest.mark.embedded_only

RATE = 16_000
SECONDS = 3600
BLOCK = 1 << 16
HEAP_LIMIT = 50 * 1024 * 1024
SEEK_TO = 1800.0


def hour_blocks() -> Iterator[np.ndarray]:
    """An hour of near silence with a short tone every ten minutes or so: cheap to encode and
    to upload as FLAC, and still a waveform with something on it."""
    tone = (0.5 * np.sin(2 * np.pi * 440 * np.arange(8192) / RATE)).astype(np.float32)
    done, total, index = 0, RATE * SECONDS, 0
    while done < total:
        count = min(BLOCK, total - done)
        block = np.zeros((2, count), np.float32)
        if index % 150 == 0:
            block[0, : len(tone)], block[1, : len(tone)] = tone, tone * 0.5
        yield block
        done, index = done + count, index + 1


@pytest.fixture(scope="module")
def hour_flac(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("long") / "hour.flac"
    return encode_blocks(target, "flac", hour_blocks(), RATE, 2, sample_fmt="s32")


def test_an_hour_long_wav_plays_from_a_seek_point_without_downloading_it(
    server: Server,
    page: Page,  # noqa: F811
    hour_flac: Path,
    receiver: Receiver,
) -> None:
    key = server.create_key()["key"]
    with server.client(key) as api:
        track = import_file(api, hour_flac)["tracks"][0]["id"]
        answer = api.post(
            "/api/v1/wav/generate",
            json={"audioId": track, "callBackUrl": receiver.url, "bitDepth": 24},
        )
        task = answer.json()["data"]["taskId"]
        record = wait_for_wav(api, task, timeout=120)
    assert record["successFlag"] == "SUCCESS", (record["errorCode"], record["errorMessage"])
    link = record["response"]["audioWavUrl"]
    size = int(httpx.head(link).headers["content-length"])
    assert size > 300_000_000  # 60 min x 16 kHz x 2 ch x 3 bytes, and its header

    wav_requests: list[Request] = []
    page.on("request", lambda r: wav_requests.append(r) if "/files/wav/" in r.url else None)
    page.goto(f"{server.url}/console")
    sign_in(page, key)
    page.goto(f"{server.url}/console/tasks/{task}")
    player = page.locator("[data-player][data-label=wav]")
    expect(player).to_have_attribute("data-ready", "true", timeout=30_000)
    expect(player).to_have_attribute("data-peaks", "drawn")

    # Seek half-way and play: the clock moves on from there.
    audio = player.locator("audio")  # in wavesurfer's open shadow root
    audio.evaluate(f"media => {{ media.muted = true; media.currentTime = {SEEK_TO}; }}")
    page.get_by_role("button", name="Play the WAV").click()
    expect(player).to_have_attribute("data-playing", "true")
    wait_until(lambda: audio.evaluate("media => media.currentTime") > SEEK_TO + 0.5)

    session = page.context.new_cdp_session(page)
    session.send("HeapProfiler.collectGarbage")
    heap = session.send("Runtime.getHeapUsage")["usedSize"]
    report = os.environ.get("WAVFORGE_ARTIFACTS")
    if report:
        Path(report).mkdir(parents=True, exist_ok=True)
        (Path(report) / "console-player-heap.txt").write_text(f"{heap}\n")
    print(f"JS heap with an hour-long 24-bit WAV playing: {heap / 1e6:.1f} MB")
    assert heap < HEAP_LIMIT

    # Every request for the WAV was a byte range, and the seek asked for one far into it.
    assert wav_requests, "the player never asked for the audio"
    ranges = [request.headers.get("range", "") for request in wav_requests]
    assert all(value.startswith("bytes=") for value in ranges), ranges
    starts = [int(value.removeprefix("bytes=").split("-")[0] or 0) for value in ranges]
    assert max(starts) > size // 3, ranges
    assert all(request.method == "GET" for request in wav_requests)


def test_the_source_player_draws_the_sources_peaks_or_a_flat_line_without(
    server: Server,
    page: Page,  # noqa: F811
    receiver: Receiver,
    tmp_path: Path,
) -> None:
    key = server.create_key()["key"]
    source = make_music(tmp_path / "song.flac", "flac", 4.0, peak=0.9)
    with server.client(key) as api:
        track = import_file(api, source)["tracks"][0]["id"]
        wait_for_source_peaks(api, track)
        answer = api.post(
            "/api/v1/wav/generate", json={"audioId": track, "callBackUrl": receiver.url}
        )
        task = answer.json()["data"]["taskId"]
        assert wait_for_wav(api, task)["successFlag"] == "SUCCESS"

    page.goto(f"{server.url}/console")
    sign_in(page, key)
    page.goto(f"{server.url}/console/tasks/{task}")
    player = page.locator("[data-player][data-label=source]")
    expect(player).to_have_attribute("data-ready", "true", timeout=30_000)
    expect(player).to_have_attribute("data-peaks", "drawn")
    assert player.get_attribute("data-peaks-url") == f"/api/v1/account/tracks/{track}/peaks"

    # A source without peaks (not measured yet, or imported before they were): a flat line.
    (stored,) = server.stored(f"sources/{track}.peaks.json")
    server.storage().delete(stored)
    page.reload()
    expect(player).to_have_attribute("data-ready", "true", timeout=30_000)
    expect(player).to_have_attribute("data-peaks", "none")
