"""Several WAVs as one ZIP: POST /api/v1/account/wav-tasks/archive and its signed link."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest

from audiogen import make_mp3
from conftest import Server, assert_envelope, break_stored_source, wait_for_wav
from support.imports import import_tracks
from support.receiver import Receiver

ARCHIVE = "/api/v1/account/wav-tasks/archive"
LINK = "/api/v1/account/wav-tasks/archive-link"


def convert(api: httpx.Client, receiver: Receiver, track_id: str, **options: Any) -> str:
    body = {"audioId": track_id, "callBackUrl": receiver.url, **options}
    task: str = assert_envelope(api.post("/api/v1/wav/generate", json=body), 200)["data"]["taskId"]
    assert wait_for_wav(api, task)["successFlag"] == "SUCCESS"
    return task


def wav_url(api: httpx.Client, task_id: str) -> str:
    data = api.get("/api/v1/wav/record-info", params={"taskId": task_id}).json()["data"]
    return str(data["response"]["audioWavUrl"])


def test_the_archive_holds_each_wav_byte_for_byte_stored(
    api: httpx.Client, mp3: Path, receiver: Receiver
) -> None:
    tracks = import_tracks(api, mp3, 3)
    tasks = [convert(api, receiver, track_id) for track_id in tracks]
    tasks.append(convert(api, receiver, tracks[0], bitDepth=24))
    response = api.post(ARCHIVE, json={"taskIds": [*tasks, tasks[1]]})  # a repeat counts once
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    assert response.headers["content-length"] == str(len(response.content))
    assert "wavs.zip" in response.headers["content-disposition"]
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        entries = archive.infolist()
        # Same titles: the names are made unique, in the order the ids were given.
        assert [e.filename for e in entries] == [
            "Song_Title.wav",
            "Song_Title (2).wav",
            "Song_Title (3).wav",
            "Song_Title (4).wav",
        ]
        assert {e.compress_type for e in entries} == {zipfile.ZIP_STORED}
        assert archive.testzip() is None  # every CRC matches
        for entry, task in zip(entries, tasks, strict=True):
            single = httpx.get(wav_url(api, task))
            assert single.status_code == 200
            assert archive.read(entry) == single.content

    # The same archive through a signed link: a bare GET, no Authorization.
    made = assert_envelope(api.post(LINK, json={"taskIds": tasks}), 200)["data"]
    assert made["count"] == 4
    linked = httpx.get(made["url"])
    assert linked.status_code == 200, linked.text
    assert int(linked.headers["content-length"]) == made["size"] == len(linked.content)
    with zipfile.ZipFile(io.BytesIO(linked.content)) as archive:
        assert archive.testzip() is None and len(archive.infolist()) == 4
    head = httpx.head(made["url"])
    assert head.status_code == 200 and head.headers["content-length"] == str(made["size"])
    forged = made["url"].replace("signature=", "signature=x")
    assert_envelope(httpx.get(forged), 403)


def test_someone_elses_task_or_a_task_without_a_file_is_refused(
    server: Server, api: httpx.Client, mp3: Path, receiver: Receiver, tmp_path: Path
) -> None:
    (track_id,) = import_tracks(api, mp3, 1)
    mine = convert(api, receiver, track_id)
    with server.client(server.create_key()["key"]) as stranger:
        (theirs_track,) = import_tracks(stranger, mp3, 1)
        theirs = convert(stranger, receiver, theirs_track)
        for path in (ARCHIVE, LINK):
            refused = assert_envelope(stranger.post(path, json={"taskIds": [theirs, mine]}), 404)
            assert mine in refused["msg"]  # as if it did not exist
        assert stranger.post(ARCHIVE, json={"taskIds": [theirs]}).status_code == 200
    assert_envelope(api.post(ARCHIVE, json={"taskIds": [mine, "no-such-task"]}), 404)

    (broken,) = import_tracks(api, mp3, 1)
    break_stored_source(server, broken, tmp_path)
    body = {"audioId": broken, "callBackUrl": receiver.url}
    failed = assert_envelope(api.post("/api/v1/wav/generate", json=body), 200)["data"]["taskId"]
    assert wait_for_wav(api, failed)["successFlag"] == "GENERATE_WAV_FAILED"
    refused = assert_envelope(api.post(ARCHIVE, json={"taskIds": [mine, failed]}), 400)
    assert failed in refused["msg"] and "no WAV file" in refused["msg"]

    for body in (
        {"taskIds": []},
        {"taskIds": [f"t{i}" for i in range(101)]},  # over the cap of 100
        {"taskIds": [""]},
        {"taskIds": "abc"},
        {"taskIds": [1, 2]},
        {},
    ):
        assert_envelope(api.post(ARCHIVE, json=body), 400)
    assert_envelope(api.post(ARCHIVE, content=b"not json"), 400)
    assert_envelope(httpx.post(f"{server.url}{ARCHIVE}", json={"taskIds": [mine]}), 401)


def vm_peak_rss(server: Server) -> int:
    """The server process's highest resident set so far (VmHWM), in bytes."""
    assert server.process is not None
    status = Path(f"/proc/{server.process.pid}/status").read_text()
    (line,) = [line for line in status.splitlines() if line.startswith("VmHWM:")]
    return int(line.split()[1]) * 1024


@pytest.mark.embedded_only  # the API process's memory; the storage door is shared by both
def test_a_large_archive_streams_in_constant_memory(
    own_server: Server, tmp_path: Path, receiver: Receiver
) -> None:
    """Four WAVs of about 42 MB each: the server's peak memory grows by far less than the
    archive it sends (building it in memory would add all 170 MB; it adds well under 1 MB)."""
    own_server.start()
    long_mp3 = make_mp3(tmp_path / "long.mp3", 240, channels=1, bitrate=32_000, title="Long")
    with own_server.client(own_server.create_key(credits=10)["key"]) as api:
        tracks = import_tracks(api, long_mp3, 4)
        tasks = [convert(api, receiver, t, bitDepth=32, sampleFormat="float") for t in tracks]
        small = api.post(ARCHIVE, json={"taskIds": tasks[:1]})  # warm the path up
        assert small.status_code == 200
        before = vm_peak_rss(own_server)
        digest, size = hashlib.sha256(), 0
        with api.stream("POST", ARCHIVE, json={"taskIds": tasks}) as response:
            assert response.status_code == 200
            expected = int(response.headers["content-length"])
            for chunk in response.iter_bytes():
                digest.update(chunk)
                size += len(chunk)
    assert size == expected > 160_000_000
    grown = vm_peak_rss(own_server) - before
    assert grown < 64 * 1024 * 1024, f"the server grew by {grown / 1e6:.0f} MB"
