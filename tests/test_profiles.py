"""Vendor profiles through HTTP: a key of each profile drives every endpoint of both dialects,
and each answer has the shape and the numbering its vendor's clients expect (tests/vendors.py,
which cites the vendor page of each row). Both deployment modes.

Also here: callback URLs that do not resolve are accepted and fail only their deliveries.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import Modes, Server, _server_maker, import_file, wait_until, wavforge
from support.receiver import Receiver
from vendors import ERRORS, PROFILES, UNIFIED_TYPES, Expected

# Vendor profiles shape answers in the HTTP layer, the same in both modes.
pytestmark = pytest.mark.embedded_only

GENERATE = "/api/v1/wav/generate"
SUBMIT = "/api/generate/submit"
RATE = 40  # per key and second on this module's server
SUNO_KEYS = {"code", "msg", "data"}
UNIFIED_ERROR_KEYS = {"code", "data", "message", "error"}


@pytest.fixture(scope="module")
def vendor_server(mode: Modes, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server whose rate limit a burst can reach, with quick callback retries."""
    made = _server_maker(mode)(
        tmp_path_factory.mktemp("vendors"),
        WAVFORGE_RATE_LIMIT=f"{RATE}/second",
        WAVFORGE_CALLBACK_RETRY_SUNO="0.2,0.2",
        WAVFORGE_CALLBACK_RETRY_UNIFIED="0.2,0.2",
    )
    yield made.start()
    made.stop()


def suno_error(response: httpx.Response, expected: Expected) -> dict[str, Any]:
    assert response.status_code == expected.http, response.text
    body = response.json()
    assert set(body) == SUNO_KEYS and body["code"] == expected.code, body
    assert isinstance(body["msg"], str) and body["msg"]
    return dict(body)


def unified_error(response: httpx.Response, expected: Expected, case: str) -> dict[str, Any]:
    assert response.status_code == expected.http, response.text
    body = response.json()
    assert set(body) == UNIFIED_ERROR_KEYS and body["code"] == expected.code, body
    assert body["error"] == {"message": body["message"], "type": UNIFIED_TYPES[case]}
    return dict(body)


def poll(get: Callable[[], dict[str, Any]], done: Callable[[dict[str, Any]], bool]) -> Any:
    """Poll slowly enough to stay under the key's rate limit."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        data = get()
        if done(data):
            return data
        time.sleep(0.1)
    raise AssertionError("not finished")


@pytest.mark.parametrize("profile", PROFILES)
def test_every_endpoint_answers_as_the_vendor_does(
    vendor_server: Server, mp3: Path, receiver: Receiver, profile: str
) -> None:
    server = vendor_server
    with server.client(server.create_key(credits=2, profile=profile)["key"]) as api:
        imported = import_file(api, mp3)
        track = imported["tracks"][0]["id"]
        _suno_successes(api, imported, receiver)
        _unified_successes(api, mp3, receiver)
        _suno_errors(api, profile, track, receiver)
        _unified_errors(api, profile, track)
        _balances(api, 0)  # two conversions spent both credits
    with server.client(server.create_key(credits=0, profile=profile)["key"]) as broke:
        other = import_file(broke, mp3)["tracks"][0]["id"]
        expected = ERRORS["no_credits"][profile]
        suno_error(
            broke.post(GENERATE, json={"audioId": other, "callBackUrl": receiver.url}), expected
        )
        unified_error(broke.post(SUBMIT, json=_submit(other)), expected, "no_credits")
    with server.client(server.create_key(profile=profile)["key"]) as hasty:
        _too_frequent(hasty, profile)


def _submit(audio_id: str | None = None, **extra: Any) -> dict[str, Any]:
    given = {"audio_id": audio_id} if audio_id else {}
    return {"model": "convert-to-wav", "input": given, **extra}


def _suno_successes(api: httpx.Client, imported: dict[str, Any], receiver: Receiver) -> None:
    accepted = api.post(GENERATE, json={"taskId": imported["taskId"], "callBackUrl": receiver.url})
    assert accepted.status_code == 200 and set(accepted.json()) == SUNO_KEYS
    task_id = accepted.json()["data"]["taskId"]
    record = poll(
        lambda: api.get("/api/v1/wav/record-info", params={"taskId": task_id}).json()["data"],
        lambda data: data["successFlag"] != "PENDING",
    )
    assert record["successFlag"] == "SUCCESS" and record["response"]["audioWavUrl"]
    music = api.get("/api/v1/generate/record-info", params={"taskId": imported["taskId"]})
    assert music.json()["data"]["response"]["sunoData"][0]["id"] == imported["tracks"][0]["id"]
    deliveries = api.get("/api/v1/wav/callbacks", params={"taskId": task_id}).json()["data"]
    assert deliveries["taskId"] == task_id


def _unified_successes(api: httpx.Client, mp3: Path, receiver: Receiver) -> None:
    imported = import_file(api, mp3)
    accepted = api.post(
        SUBMIT, json=_submit(imported["tracks"][0]["id"], callback_url=receiver.url)
    )
    assert accepted.status_code == 200 and set(accepted.json()) == {"code", "data"}
    task_id = accepted.json()["data"]["task_id"]
    status = poll(
        lambda: api.get(f"/api/generate/status/{task_id}").json()["data"],
        lambda data: data["status"] in ("finished", "failed"),
    )
    [file] = status["files"]
    assert file["wav_url"] == file["file_url"] and file["file_type"] == "audio"
    assert status["credits_amount"] == 1
    detail = api.get("/api/generate/detail/music", params={"task_id": task_id}).json()
    assert detail["data"]["files"] == [file]
    music = api.get("/api/generate/detail/music", params={"task_id": imported["taskId"]})
    assert music.json()["data"]["files"][0]["audio_id"] == imported["tracks"][0]["id"]


def _suno_errors(api: httpx.Client, profile: str, track: str, receiver: Receiver) -> None:
    def expect(case: str) -> Expected:
        return ERRORS[case][profile]

    suno_error(api.post(GENERATE, json={"callBackUrl": receiver.url}), expect("validation"))
    not_json = api.post(GENERATE, content=b"{", headers={"content-type": "application/json"})
    suno_error(not_json, expect("not_json"))
    for path in ("/api/v1/wav/record-info", "/api/v1/generate/record-info"):
        suno_error(api.get(path, params={"taskId": "nope"}), expect("not_found"))
        suno_error(api.get(path, params={"taskId": "x" * 200}), expect("too_long"))
    again = api.post(GENERATE, json={"audioId": track, "callBackUrl": receiver.url})
    assert suno_error(again, expect("conflict"))["data"]["taskId"]


def _unified_errors(api: httpx.Client, profile: str, track: str) -> None:
    def check(response: httpx.Response, case: str) -> dict[str, Any]:
        return unified_error(response, ERRORS[case][profile], case)

    check(api.post(SUBMIT, json=_submit()), "validation")
    check(api.post(SUBMIT, content=b"[", headers={"content-type": "application/json"}), "not_json")
    check(api.get("/api/generate/status/nope"), "not_found")
    check(api.get("/api/generate/detail/music", params={"task_id": "nope"}), "not_found")
    check(api.get("/api/generate/status/" + "x" * 200), "too_long")
    assert check(api.post(SUBMIT, json=_submit(track)), "conflict")["data"]["task_id"]


def _balances(api: httpx.Client, credits: int) -> None:
    for path in ("/api/v1/generate/credit", "/api/v1/chat/credit"):
        body = api.get(path).json()
        assert body == {"code": 200, "msg": "success", "data": credits}
    balance = api.get("/api/user/balance").json()
    assert balance["code"] == 200 and balance["data"]["credits_amount"] == credits
    # Non-empty, as PoYo clients require (engels74/poyo-studio parsers.ts), and undeliverable.
    assert balance["data"]["email"].endswith("@wavforge.invalid")


def _too_frequent(api: httpx.Client, profile: str) -> None:
    """A burst over the key's rate: the Suno and the unified paths both answer in the
    profile's numbering, with ``Retry-After``."""
    expected = ERRORS["too_frequent"][profile]
    for path, check in (
        ("/api/v1/chat/credit", lambda r: suno_error(r, expected)),
        ("/api/user/balance", lambda r: unified_error(r, expected, "too_frequent")),
    ):
        answers = [api.get(path) for _ in range(RATE * 2)]
        limited = [r for r in answers if r.json()["code"] == expected.code]
        assert limited, [r.json()["code"] for r in answers]
        check(limited[0])
        assert int(limited[0].headers["retry-after"]) >= 1
        wait_until(lambda path=path: api.get(path).json()["code"] != expected.code)  # room again


def test_maintenance_is_numbered_per_profile(vendor_server: Server, mp3: Path) -> None:
    keys = {profile: vendor_server.create_key(profile=profile)["key"] for profile in PROFILES}
    wavforge("maintenance", "on", env=vendor_server.env)
    try:
        for profile, key in keys.items():
            _check_maintenance(vendor_server, key, ERRORS["maintenance"][profile])
    finally:
        wavforge("maintenance", "off", env=vendor_server.env)
        with vendor_server.client(keys["sunoapi"]) as api:
            wait_until(lambda: _while_maintained(api, ERRORS["not_found"]["sunoapi"]))


def _check_maintenance(server: Server, key: str, expected: Expected) -> None:
    with server.client(key) as api:
        suno_error(wait_until(lambda: _while_maintained(api, expected)), expected)
        unified_error(api.post(SUBMIT, json=_submit("x")), expected, "maintenance")
        assert api.get("/api/v1/chat/credit").status_code == 200  # reads still work


def _while_maintained(api: httpx.Client, expected: Expected) -> httpx.Response | None:
    """The switch is read about once a second: the answer once it is seen."""
    answer = api.post(GENERATE, json={"audioId": "x", "callBackUrl": "https://example.com/cb"})
    return answer if answer.json()["code"] == expected.code else None


def test_a_request_without_a_valid_key_gets_the_servers_default(vendor_server: Server) -> None:
    with vendor_server.client("wf_not-a-key") as stranger:
        suno_error(stranger.get("/api/v1/chat/credit"), Expected(401, 401, ""))
        body = stranger.get("/api/user/balance").json()
        assert body["code"] == 401 and body["error"]["type"] == "authentication_error"


@pytest.mark.parametrize("dialect", ["suno", "unified"])
def test_a_callback_host_that_does_not_resolve_is_accepted_and_its_deliveries_recorded(
    vendor_server: Server, mp3: Path, dialect: str
) -> None:
    """Clients send fixed placeholders; the vendors accept any well-formed URL. The WAV is
    made and served; each delivery attempt checks the host again and records why it failed."""
    placeholder = "https://placeholder.invalid/hook"
    with vendor_server.client(vendor_server.create_key()["key"]) as api:
        track = import_file(api, mp3)["tracks"][0]["id"]
        if dialect == "suno":
            answer = api.post(GENERATE, json={"audioId": track, "callBackUrl": placeholder})
            task_id = answer.json()["data"]["taskId"]
        else:
            answer = api.post(SUBMIT, json=_submit(track, callback_url=placeholder))
            task_id = answer.json()["data"]["task_id"]
        assert answer.status_code == 200, answer.text

        def given_up() -> list[dict[str, Any]] | None:
            log = api.get("/api/v1/wav/callbacks", params={"taskId": task_id}).json()["data"]
            failed = [d for d in log["deliveries"] if d["status"] == "FAILED"]
            return failed[0]["attempts"] if failed else None

        attempts = wait_until(given_up)
        assert len(attempts) == 3  # the first try and the two retries of this server
        assert all("could not be resolved" in a["error"] for a in attempts), attempts
        record = api.get("/api/v1/wav/record-info", params={"taskId": task_id}).json()["data"]
        assert record["successFlag"] == "CALLBACK_EXCEPTION"
        download = httpx.get(record["response"]["audioWavUrl"], timeout=30)
        assert download.status_code == 200 and download.content[:4] == b"RIFF"


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/hook",
        "https://user:pw@example.com/hook",
        "https://" + "a" * 2050 + ".example/hook",
    ],
)
def test_a_callback_url_that_is_provably_bad_is_still_refused(
    vendor_server: Server, url: str
) -> None:
    with vendor_server.client(vendor_server.create_key()["key"]) as api:
        answer = api.post(GENERATE, json={"audioId": "x", "callBackUrl": url})
        assert answer.status_code in (400, 413) and answer.json()["code"] in (400, 413)
