"""The unified dialect, pinned to CONTRACT §5: shapes, status words, times, one record per track
and format."""

from __future__ import annotations

import io
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import soundfile

from conftest import Server, assert_envelope, break_stored_source, import_file
from support.receiver import Receiver

ISO_NO_OFFSET = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$")


def submit(api: httpx.Client, **body: Any) -> httpx.Response:
    return api.post("/api/generate/submit", json={"model": "convert-to-wav", **body})


def assert_unified_error(response: httpx.Response, code: int) -> dict[str, Any]:
    assert response.status_code == code, response.text
    body = response.json()
    assert set(body) == {"code", "data", "message", "error"} and body["code"] == code
    assert isinstance(body["message"], str) and body["message"]
    # The vendors' own error object (docs.vidgo.ai/api-manual/error-codes) says the same.
    assert body["error"]["message"] == body["message"] and body["error"]["type"]
    return dict(body)


def wait_finished(api: httpx.Client, task_id: str, timeout: float = 60) -> dict[str, Any]:
    seen: set[str] = set()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = api.get(f"/api/generate/status/{task_id}").json()["data"]
        seen.add(data["status"])
        if data["status"] in ("finished", "failed"):
            data["_seen"] = seen
            return dict(data)
        time.sleep(0.05)
    raise AssertionError(f"{task_id} did not finish")


def test_submit_status_and_detail_shapes(api: httpx.Client, mp3: Path) -> None:
    imported = import_file(api, mp3)
    response = submit(api, input={"task_id": imported["taskId"]})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"code", "data"} and body["code"] == 200
    data = body["data"]
    assert set(data) == {"task_id", "status", "created_time"}
    assert data["status"] == "not_started" and ISO_NO_OFFSET.match(data["created_time"])

    status = wait_finished(api, data["task_id"])
    assert status.pop("_seen") <= {"not_started", "running", "finished"}
    assert status["status"] == "finished" and status["progress"] == 100
    assert status["error_message"] is None and ISO_NO_OFFSET.match(status["created_time"])
    assert {"task_id", "status", "files", "created_time", "progress", "error_message"} <= set(
        status
    )
    [file] = status["files"]
    # Generic unified clients read file_url/file_type; music clients and the vendor's music
    # webhook read wav_url (CONTRACT §5): one link under each name.
    assert set(file) == {"file_url", "file_type", "wav_url"} and file["file_type"] == "audio"
    assert file["wav_url"] == file["file_url"]
    assert httpx.get(file["wav_url"]).content[:4] == b"RIFF"

    detail = api.get("/api/generate/detail/music", params={"task_id": data["task_id"]}).json()
    assert detail["data"]["files"] == [file]

    music = api.get("/api/generate/detail/music", params={"task_id": imported["taskId"]}).json()
    [track] = music["data"]["files"]
    assert set(track) == {
        "audio_id",
        "audio_url",
        "image_url",
        "title",
        "tags",
        "duration",
        "prompt",
    }
    assert track["audio_id"] == imported["tracks"][0]["id"] and track["title"] == "Song Title"


def test_unknown_model_names_the_offered_ones(api: httpx.Client) -> None:
    response = api.post("/api/generate/submit", json={"model": "suno-v4", "input": {}})
    assert "convert-to-wav" in assert_unified_error(response, 400)["message"]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"input": {}}, "input.task_id or input.audio_id"),
        ({"input": {"audio_id": "x", "bit_depth": 20}}, "input.bit_depth"),
        ({"input": {"audio_id": "x", "sample_rate": 1}}, "input.sample_rate"),
        ({"input": {"audio_id": "x"}, "callback_url": "ftp://x"}, "http or https"),
    ],
)
def test_bad_submissions_are_400_in_the_unified_envelope(
    api: httpx.Client, body: dict[str, Any], words: str
) -> None:
    assert words in assert_unified_error(submit(api, **body), 400)["message"]


def test_unknown_and_foreign_ids_are_404(api: httpx.Client, server: Server, mp3: Path) -> None:
    assert_unified_error(api.get("/api/generate/status/nope"), 404)
    assert_unified_error(api.get("/api/generate/detail/music", params={"task_id": "nope"}), 404)
    imported = import_file(api, mp3)
    task_id = submit(api, input={"task_id": imported["taskId"]}).json()["data"]["task_id"]
    with server.client(server.create_key()["key"]) as stranger:
        assert_unified_error(stranger.get(f"/api/generate/status/{task_id}"), 404)
        foreign = stranger.get("/api/generate/detail/music", params={"task_id": task_id})
        assert_unified_error(foreign, 404)


def test_one_record_per_track_and_format_across_dialects(
    api: httpx.Client, mp3: Path, receiver: Receiver
) -> None:
    """The default format (what every vendor client asks for), 16 and 24 bits: three tasks,
    a charge and a WAV each; asking again for a format the track holds is 409 in either
    dialect, naming the task that holds it."""
    track = import_file(api, mp3)["tracks"][0]["id"]
    balance = api.get("/api/v1/generate/credit").json()["data"]

    def suno(**options: int) -> httpx.Response:
        body = {"audioId": track, "callBackUrl": receiver.url, **options}
        return api.post("/api/v1/wav/generate", json=body)

    default = suno().json()["data"]["taskId"]
    sixteen = suno(bitDepth=16).json()["data"]["taskId"]
    twenty_four = submit(api, input={"audio_id": track, "bit_depth": 24}).json()["data"]["task_id"]
    held = [(default, {}, {}), (twenty_four, {"bitDepth": 24}, {"bit_depth": 24})]
    for task_id, suno_options, unified_options in held:
        assert assert_envelope(suno(**suno_options), 409)["data"] == {"taskId": task_id}
        conflict = submit(api, input={"audio_id": track, **unified_options})
        assert assert_unified_error(conflict, 409)["data"] == {"task_id": task_id}

    tasks = [default, sixteen, twenty_four]
    assert api.get("/api/v1/generate/credit").json()["data"] == balance - 3
    entries = api.get("/api/v1/account/ledger").json()["data"]["entries"]
    charged = [e["taskId"] for e in entries if e["reason"] == "charge" and e["taskId"] in tasks]
    assert sorted(charged) == sorted(tasks)
    depths = [wav_subtype(wait_finished(api, task_id)) for task_id in tasks]
    assert depths == ["PCM_16", "PCM_16", "PCM_24"]
    # The same record, read through the other dialect.
    assert api.get(f"/api/generate/status/{default}").json()["data"]["task_id"] == default


def wav_subtype(status: dict[str, Any]) -> str:
    """The finished task's WAV, as its header describes the samples (``PCM_24``, ...)."""
    [file] = status["files"]
    return str(soundfile.info(io.BytesIO(httpx.get(file["wav_url"]).content)).subtype)


def test_unified_callback_body_is_the_status_answer(
    api: httpx.Client, mp3: Path, receiver: Receiver
) -> None:
    """The vendor: the callback has "the same structure as the status endpoint response",
    envelope included, so a receiver reads ``body.data.status`` and ``body.data.files``."""
    track = import_file(api, mp3)["tracks"][0]["id"]
    task_id = submit(api, callback_url=receiver.url, input={"audio_id": track}).json()["data"][
        "task_id"
    ]
    call = receiver.wait_for(1)[0]
    assert call["body"] == api.get(f"/api/generate/status/{task_id}").json()
    assert call["body"]["code"] == 200 and call["body"]["data"]["status"] == "finished"
    assert call["body"]["data"]["files"][0]["wav_url"].startswith("http")


def test_a_failed_task_is_posted_as_a_status_answer(
    api: httpx.Client, server: Server, mp3: Path, tmp_path: Path, receiver: Receiver
) -> None:
    """A source that cannot be converted: ``code`` 200 and ``status: failed``,
    as the status endpoint answers it."""
    track = import_file(api, mp3)["tracks"][0]["id"]
    break_stored_source(server, track, tmp_path)
    task_id = submit(api, callback_url=receiver.url, input={"audio_id": track}).json()["data"][
        "task_id"
    ]
    call = receiver.wait_for(1)[0]
    assert call["body"] == api.get(f"/api/generate/status/{task_id}").json()
    assert call["body"]["code"] == 200 and call["body"]["data"]["status"] == "failed"
    assert call["body"]["data"]["files"] == [] and call["body"]["data"]["error_message"]
