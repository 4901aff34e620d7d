"""Every error code of the Suno dialect, provoked through HTTP, answered in the envelope."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from wavforge.errors import ALL_ERRORS

from conftest import MakeServer, Server, assert_envelope, import_file, wavforge
from support.receiver import Receiver


@pytest.fixture
def track(api: httpx.Client, mp3: Path) -> dict[str, Any]:
    return import_file(api, mp3)


# The contract's error envelope comes from the HTTP layer, the same in both modes.
pytestmark = pytest.mark.embedded_only


def generate(api: httpx.Client, **body: Any) -> httpx.Response:
    return api.post("/api/v1/wav/generate", json=body)


# 400 -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"callBackUrl": "http://127.0.0.1/cb"}, "taskId or audioId"),
        ({"taskId": "x"}, "callBackUrl"),
        ({"taskId": "x", "callBackUrl": "ftp://example.com/cb"}, "http or https"),
        ({"taskId": "x", "callBackUrl": "http://user:pw@example.com/cb"}, "credentials"),
        ({"taskId": "x", "callBackUrl": "not a url"}, "spaces"),
        ({"taskId": "x", "callBackUrl": "not-a-url"}, "http or https"),
        ({"taskId": 5, "callBackUrl": "http://127.0.0.1/cb"}, "taskId"),
    ],
)
def test_400_invalid_parameters(api: httpx.Client, body: dict[str, Any], words: str) -> None:
    assert words in assert_envelope(generate(api, **body), 400)["msg"]


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2]", b""])
def test_400_body_that_is_not_a_json_object(api: httpx.Client, content: bytes) -> None:
    response = api.post(
        "/api/v1/wav/generate", content=content, headers={"content-type": "application/json"}
    )
    assert_envelope(response, 400)


def test_400_ids_that_do_not_belong_together(
    api: httpx.Client, mp3: Path, receiver: Receiver
) -> None:
    first, second = import_file(api, mp3), import_file(api, mp3)
    response = generate(
        api,
        taskId=first["taskId"],
        audioId=second["tracks"][0]["id"],
        callBackUrl=receiver.url,
    )
    assert "does not belong" in assert_envelope(response, 400)["msg"]


def test_400_import_of_something_that_is_not_audio(own_server: Server, mp3: Path) -> None:
    own_server.start()
    with own_server.client(own_server.create_key()["key"]) as api, mp3.open("rb") as good:
        files = [("file", ("good.mp3", good)), ("file", ("notes.mp3", b"not sounds " * 100))]
        response = api.post("/api/v1/music/import", files=files)
    body = assert_envelope(response, 400)
    assert body["msg"].startswith("notes.mp3: ")
    # nothing half-made: neither the good file nor any staged upload remains
    assert own_server.stored("sources/") == []
    assert not list((own_server.data_dir / "tmp").glob("import-*"))


def test_400_import_of_a_bad_url(api: httpx.Client) -> None:
    response = api.post("/api/v1/music/import", json={"urls": ["file:///etc/passwd"]})
    assert "http or https" in assert_envelope(response, 400)["msg"]


# 401 -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic abc"},
        {"Authorization": "Bearer wf_nope"},
    ],
)
def test_401_without_a_valid_key(server: Server, headers: dict[str, str]) -> None:
    for method, path in [("GET", "/api/v1/generate/credit"), ("POST", "/api/v1/wav/generate")]:
        response = httpx.request(method, server.url + path, headers=headers, json={})
        assert_envelope(response, 401)


def test_401_for_a_revoked_key(server: Server) -> None:
    issued = server.create_key()
    with server.client(issued["key"]) as api:
        assert api.get("/api/v1/generate/credit").status_code == 200
        wavforge("keys", "revoke", issued["key_id"], env=server.env)
        assert_envelope(api.get("/api/v1/generate/credit"), 401)


# 404 -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/nothing-here"),
        ("GET", "/api/v1/wav/generate"),
        ("PUT", "/api/v1/wav/generate"),
        ("DELETE", "/api/v1/wav/record-info"),
        ("POST", "/api/v1/generate/credit"),
        ("PATCH", "/healthz"),
    ],
)
def test_404_for_unknown_path_and_wrong_method(api: httpx.Client, method: str, path: str) -> None:
    body = assert_envelope(api.request(method, path), 404)
    assert body["msg"] == "invalid request method or path"


def test_404_for_unknown_and_foreign_records(
    server: Server, api: httpx.Client, track: dict[str, Any], receiver: Receiver
) -> None:
    with server.client(server.create_key()["key"]) as stranger:
        for path, task_id in [
            ("/api/v1/generate/record-info", track["taskId"]),
            ("/api/v1/wav/record-info", "0" * 32),
        ]:
            assert_envelope(stranger.get(path, params={"taskId": task_id}), 404)
        response = generate(stranger, taskId=track["taskId"], callBackUrl=receiver.url)
        assert_envelope(response, 404)
        mine = generate(api, taskId=track["taskId"], callBackUrl=receiver.url).json()["data"]
        answer = stranger.get("/api/v1/wav/record-info", params={"taskId": mine["taskId"]})
        assert_envelope(answer, 404)


# 409 -------------------------------------------------------------------------------------


def test_409_carries_the_existing_task_id(
    api: httpx.Client, track: dict[str, Any], receiver: Receiver
) -> None:
    first = generate(api, taskId=track["taskId"], callBackUrl=receiver.url)
    again = generate(api, audioId=track["tracks"][0]["id"], callBackUrl=receiver.url)
    body = assert_envelope(again, 409)
    assert body["data"] == {"taskId": first.json()["data"]["taskId"]}


# 413 -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"taskId": "x" * 129, "callBackUrl": "http://127.0.0.1/cb"},
        {"audioId": "x" * 129, "callBackUrl": "http://127.0.0.1/cb"},
        {"taskId": "x", "callBackUrl": "http://127.0.0.1/" + "a" * 2048},
    ],
)
def test_413_for_over_long_fields(api: httpx.Client, body: dict[str, Any]) -> None:
    assert_envelope(generate(api, **body), 413)


def test_413_for_an_upload_over_the_limit(api: httpx.Client) -> None:
    big = b"\0" * (5 * 1024 * 1024)  # the shared server allows 4 MiB
    assert_envelope(api.post("/api/v1/music/import", files={"file": ("big.mp3", big)}), 413)


def test_413_for_a_streamed_body_without_length(api: httpx.Client) -> None:
    def chunks():
        yield b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.mp3"\r\n\r\n'
        for _ in range(6):
            yield b"\0" * (1024 * 1024)

    response = api.post(
        "/api/v1/music/import",
        content=chunks(),
        headers={"content-type": "multipart/form-data; boundary=x"},
    )
    assert_envelope(response, 413)


def test_413_for_an_over_long_query_id(api: httpx.Client) -> None:
    assert_envelope(api.get("/api/v1/wav/record-info", params={"taskId": "x" * 129}), 413)


# 429 -------------------------------------------------------------------------------------


def test_429_when_credits_run_out(server: Server, mp3: Path, receiver: Receiver) -> None:
    with server.client(server.create_key(credits=0)["key"]) as poor:
        imported = import_file(poor, mp3)
        response = generate(poor, taskId=imported["taskId"], callBackUrl=receiver.url)
        assert_envelope(response, 429)
        assert poor.get("/api/v1/generate/credit").json()["data"] == 0


# 500 -------------------------------------------------------------------------------------


def test_500_reveals_nothing(own_server: Server, mp3: Path) -> None:
    own_server.start()
    own_server.break_storage()
    with own_server.client(own_server.create_key()["key"]) as api, mp3.open("rb") as handle:
        response = api.post("/api/v1/music/import", files={"file": ("song.mp3", handle)})
    body = assert_envelope(response, 500)
    assert body["msg"] == "server error"
    assert str(own_server.data_dir) not in response.text and "Traceback" not in response.text


def test_every_domain_error_has_a_distinct_contract_code() -> None:
    codes = [error.code for error in ALL_ERRORS]
    assert len(codes) == len(set(codes))
    assert {400, 401, 404, 409, 413, 429, 500} <= set(codes)


INTERNAL_URLS = [
    "http://127.0.0.1:9/cb",
    "http://10.1.2.3/cb",
    "http://169.254.169.254/latest",
    "http://[::1]/cb",
    "http://[::ffff:127.0.0.1]/cb",
    "http://localhost/cb",
    "http://0.0.0.0/cb",
]


def test_400_for_internal_addresses_unless_allowed(
    make_server: MakeServer, tmp_path: Path, mp3: Path
) -> None:
    guarded = make_server(tmp_path, WAVFORGE_CALLBACK_ALLOW_PRIVATE="false").start()
    try:
        with guarded.client(guarded.create_key()["key"]) as api:
            imported = import_file(api, mp3)
            for url in INTERNAL_URLS:
                response = generate(api, taskId=imported["taskId"], callBackUrl=url)
                assert "private or internal" in assert_envelope(response, 400)["msg"], url
                refused = api.post("/api/v1/music/import", json={"urls": [url]})
                assert "private or internal" in assert_envelope(refused, 400)["msg"], url
    finally:
        guarded.stop()
