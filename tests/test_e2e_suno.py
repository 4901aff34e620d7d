"""A Suno-dialect client's whole journey over real HTTP: import, convert, callback, download."""

from __future__ import annotations

import io
import wave
from pathlib import Path
from typing import Any

import httpx
import pytest

from audiogen import ffmpeg_s16, make_mp3
from conftest import Server, import_file, wait_for_wav
from support.receiver import Receiver


def wav_samples(content: bytes) -> tuple[wave._wave_params, bytes]:
    with wave.open(io.BytesIO(content)) as reader:
        return reader.getparams(), reader.readframes(reader.getnframes())


@pytest.mark.parametrize("ids", ["taskId", "audioId", "both"])
def test_import_convert_callback_download(
    server: Server, api: httpx.Client, receiver: Receiver, tmp_path: Path, ids: str
) -> None:
    source = make_mp3(tmp_path / "in.mp3", 3.0, title=f"Journey {ids}")
    imported = import_file(api, source)
    track = imported["tracks"][0]
    body: dict[str, Any] = {"callBackUrl": receiver.url}
    if ids in ("taskId", "both"):
        body["taskId"] = imported["taskId"]
    if ids in ("audioId", "both"):
        body["audioId"] = track["id"]

    accepted = api.post("/api/v1/wav/generate", json=body)
    assert accepted.status_code == 200
    assert accepted.json()["code"] == 200 and accepted.json()["msg"] == "success"
    task_id = accepted.json()["data"]["taskId"]

    (call,) = receiver.wait_for(1)
    assert call["body"]["code"] == 200
    assert call["body"]["data"]["task_id"] == task_id
    data = call["body"]["data"]
    url = data["audioWavUrl"]
    # The documented fields, then what real receivers read besides (docs/api.md).
    assert url == data["audio_wav_url"] == data["response"]["audioWavUrl"]
    assert data["taskId"] == task_id and data["audioId"] == data["musicId"] == track["id"]

    record = wait_for_wav(api, task_id)
    assert record["successFlag"] == "SUCCESS"
    assert record["musicId"] == track["id"] and record["musicIndex"] == 0
    assert record["errorCode"] is None and record["errorMessage"] is None
    assert record["response"]["audioWavUrl"] == url

    download = httpx.get(url, timeout=30)  # a bare GET: no Authorization header
    assert download.status_code == 200
    assert download.headers["content-type"] == "audio/wav"
    assert f"Journey_{ids}.wav" in download.headers["content-disposition"]
    params, samples = wav_samples(download.content)
    assert (params.nchannels, params.sampwidth, params.framerate) == (2, 2, 44100)
    assert samples == ffmpeg_s16(source)


def test_music_record_info_has_the_suno_shape(api: httpx.Client, mp3: Path) -> None:
    imported = import_file(api, mp3, tags="ambient", prompt="calm")
    answer = api.get("/api/v1/generate/record-info", params={"taskId": imported["taskId"]})
    assert answer.status_code == 200
    data = answer.json()["data"]
    assert data["taskId"] == imported["taskId"] and data["status"] == "SUCCESS"
    assert data["errorCode"] is None and data["errorMessage"] is None
    (song,) = data["response"]["sunoData"]
    assert set(song) >= {
        "id", "audioUrl", "streamAudioUrl", "imageUrl", "prompt", "modelName",
        "title", "tags", "createTime", "duration",
    }  # fmt: skip
    assert song["title"] == "Song Title" and song["tags"] == "ambient" and song["prompt"] == "calm"
    assert song["duration"] == pytest.approx(4.0, abs=0.1)
    source = httpx.get(song["audioUrl"], timeout=30)
    assert source.status_code == 200 and source.content == mp3.read_bytes()


def test_import_several_files_in_one_task(api: httpx.Client, tmp_path: Path) -> None:
    files = [make_mp3(tmp_path / f"{n}.mp3", 1.0, channels=1, rate=22050) for n in range(3)]
    handles = [path.open("rb") for path in files]
    try:
        answer = api.post(
            "/api/v1/music/import",
            files=[("file", (p.name, h)) for p, h in zip(files, handles, strict=True)],
        )
    finally:
        for handle in handles:
            handle.close()
    assert answer.status_code == 200
    assert [t["title"] for t in answer.json()["data"]["tracks"]] == ["0", "1", "2"]


def test_import_by_url(server: Server, api: httpx.Client, mp3: Path) -> None:
    first = import_file(api, mp3)
    source_url = first["tracks"][0]["audioUrl"]
    answer = api.post("/api/v1/music/import", json={"urls": [source_url], "title": "From URL"})
    assert answer.status_code == 200, answer.text
    (track,) = answer.json()["data"]["tracks"]
    assert track["title"] == "From URL"
    assert httpx.get(track["audioUrl"], timeout=30).content == mp3.read_bytes()


def test_polling_without_callback_url_is_refused(api: httpx.Client, mp3: Path) -> None:
    imported = import_file(api, mp3)
    answer = api.post("/api/v1/wav/generate", json={"taskId": imported["taskId"]})
    assert answer.status_code == 400
    assert "callBackUrl" in answer.json()["msg"]


def test_credit_balance_is_charged_per_conversion(
    server: Server, receiver: Receiver, mp3: Path
) -> None:
    key = server.create_key(credits=3)["key"]
    with server.client(key) as api:
        assert api.get("/api/v1/generate/credit").json() == {
            "code": 200, "msg": "success", "data": 3
        }  # fmt: skip
        imported = import_file(api, mp3)
        api.post(
            "/api/v1/wav/generate", json={"taskId": imported["taskId"], "callBackUrl": receiver.url}
        )
        assert api.get("/api/v1/generate/credit").json()["data"] == 2
