"""Callbacks as receivers see them: signed, retried on schedule, durable, never redirected."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from wavforge.outbound.signing import signature_headers

from conftest import MakeServer, Server, import_file, wait_until
from support.processes import free_port
from support.receiver import Receiver


def vendor_signature(secret: str, task_id: str, timestamp: str) -> str:
    """The Suno-family formula, written out independently of the server's code."""
    key = base64.b64decode(secret.removeprefix("whsec_") + "==")
    digest = hmac.new(key, f"{task_id}.{timestamp}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def submit_unified(api: httpx.Client, audio_id: str, callback: str) -> str:
    response = api.post(
        "/api/generate/submit",
        json={"model": "convert-to-wav", "callback_url": callback, "input": {"audio_id": audio_id}},
    )
    assert response.status_code == 200, response.text
    return str(response.json()["data"]["task_id"])


def submit_suno(api: httpx.Client, audio_id: str, callback: str) -> str:
    response = api.post("/api/v1/wav/generate", json={"audioId": audio_id, "callBackUrl": callback})
    assert response.status_code == 200, response.text
    return str(response.json()["data"]["taskId"])


def deliveries_of(api: httpx.Client, task_id: str) -> list[dict[str, Any]]:
    log = api.get("/api/v1/wav/callbacks", params={"taskId": task_id}).json()["data"]
    return list(log["deliveries"])


def attempts_of(api: httpx.Client, task_id: str) -> list[dict[str, Any]]:
    return [attempt for delivery in deliveries_of(api, task_id) for attempt in delivery["attempts"]]


def delivered(api: httpx.Client, task_id: str) -> bool:
    """Whether the task's callback has been delivered: every attempt, redirects included,
    is on record, and a delivered callback is never sent again."""
    return [delivery["status"] for delivery in deliveries_of(api, task_id)] == ["DELIVERED"]


def test_signer_reproduces_the_standard_webhooks_test_vector() -> None:
    headers = signature_headers(
        webhook_id="msg_p5jXN8AQM9LWM0D4loKWxJek",
        task_id="unused",
        body=b'{"test": 2432232314}',
        secrets=["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
        at=datetime.fromtimestamp(1614265330, UTC),
    )
    assert headers["webhook-signature"] == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert headers["webhook-timestamp"] == headers["X-Webhook-Timestamp"] == "1614265330"


@pytest.fixture
def flaky() -> Iterator[Receiver]:
    running = Receiver([(500, {}), (503, {})])
    yield running
    running.close()


def test_500_then_503_then_200_is_three_signed_attempts_on_schedule(
    api: httpx.Client, account: dict[str, Any], mp3: Path, flaky: Receiver
) -> None:
    track = import_file(api, mp3)["tracks"][0]["id"]
    task_id = submit_unified(api, track, flaky.url)
    calls = flaky.wait_for(3)
    wait_until(lambda: delivered(api, task_id))
    assert [call["answered"] for call in flaky.calls] == [500, 503, 200]  # nothing after 200
    first, second, third = calls
    # Unified schedule 1 s, 2 s (Huey's scheduler wakes once a second: up to 1 s late).
    assert 1.0 <= second["at"] - first["at"] < 2.3
    assert 2.0 <= third["at"] - second["at"] < 3.3
    ids = {call["headers"]["webhook-id"] for call in calls}
    assert len(ids) == 1 and ids.pop().startswith("msg_")
    stamps = [int(call["headers"]["webhook-timestamp"]) for call in calls]
    assert stamps == sorted(stamps) and stamps[2] - stamps[0] >= 2  # fresh on every attempt

    status = api.get(f"/api/generate/status/{task_id}").json()
    assert third["body"] == status and status["data"]["status"] == "finished"
    secret = account["webhook_secret"]
    assert Webhook(secret).verify(third["raw"], third["headers"]) == status
    for call in calls:
        stamp = call["headers"]["x-webhook-timestamp"]
        assert call["headers"]["x-webhook-signature"] == vendor_signature(secret, task_id, stamp)

    attempts = attempts_of(api, task_id)
    assert [a["statusCode"] for a in attempts] == [500, 503, 200]
    assert all(a["error"] is None and a["durationMs"] >= 0 and a["time"] for a in attempts)


def test_redirects_are_not_followed(api: httpx.Client, mp3: Path) -> None:
    target = Receiver()
    redirecting = Receiver([(307, {"Location": target.url})])
    try:
        track = import_file(api, mp3)["tracks"][0]["id"]
        task_id = submit_unified(api, track, redirecting.url)
        redirecting.wait_for(2)  # the 307 is a failed attempt; the retry is delivered
        wait_until(lambda: delivered(api, task_id))
        assert target.calls == []
        assert [a["statusCode"] for a in attempts_of(api, task_id)] == [307, 200]
    finally:
        target.close()
        redirecting.close()


def test_a_rotated_secret_signs_beside_the_old_one(
    api: httpx.Client, account: dict[str, Any], mp3: Path, receiver: Receiver
) -> None:
    old = account["webhook_secret"]
    rotated = api.post("/api/v1/account/webhook-secret/rotate").json()["data"]
    new = rotated["webhookSecret"]
    assert new.startswith("whsec_") and new != old and rotated["previousSecretValidUntil"]
    track = import_file(api, mp3)["tracks"][0]["id"]
    task_id = submit_unified(api, track, receiver.url)
    call = receiver.wait_for(1)[0]
    headers = call["headers"]
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):  # a receiver holding either secret accepts the delivery
        Webhook(secret).verify(call["raw"], headers)
    stamp = headers["x-webhook-timestamp"]
    assert headers["x-webhook-signature"].split(" ") == [
        vendor_signature(new, task_id, stamp),
        vendor_signature(old, task_id, stamp),
    ]


def test_receiver_down_ends_in_callback_exception_and_the_wav_still_downloads(
    make_server: MakeServer, tmp_path: Path, mp3: Path
) -> None:
    server = make_server(tmp_path, WAVFORGE_CALLBACK_RETRY_SUNO="0.2,0.2").start()
    try:
        with server.client(server.create_key()["key"]) as api:
            track = import_file(api, mp3)["tracks"][0]["id"]
            down = f"http://127.0.0.1:{free_port()}/callback"  # nothing listens there
            task_id = submit_suno(api, track, down)

            def ended() -> dict[str, Any] | None:
                data = api.get("/api/v1/wav/record-info", params={"taskId": task_id}).json()
                flag = data["data"]["successFlag"]
                return data["data"] if flag == "CALLBACK_EXCEPTION" else None

            record = wait_until(ended)
            attempts = attempts_of(api, task_id)
            assert len(attempts) == 3  # the first try and the two retries of the schedule
            assert all(a["statusCode"] is None and a["error"] for a in attempts)
            wav = httpx.get(record["response"]["audioWavUrl"])
            assert wav.status_code == 200 and wav.content[:4] == b"RIFF"
            unified = api.get(f"/api/generate/status/{task_id}").json()["data"]
            assert unified["status"] == "finished"
    finally:
        server.stop()


def test_a_delivery_survives_sigkill_between_attempts(
    make_server: MakeServer, tmp_path: Path, mp3: Path
) -> None:
    flaky = Receiver([(500, {})])
    server: Server = make_server(tmp_path, WAVFORGE_CALLBACK_RETRY_SUNO="2").start()
    try:
        with server.client(server.create_key()["key"]) as api:
            track = import_file(api, mp3)["tracks"][0]["id"]
            task_id = submit_suno(api, track, flaky.url)
            flaky.wait_for(1)
            wait_until(lambda: attempts_of(api, task_id))  # the failure is on record
        server.kill()  # SIGKILL with the retry scheduled (2 s later) but not yet sent
        assert len(flaky.calls) == 1
        server.start()
        calls = flaky.wait_for(2, timeout=30)
        assert calls[1]["answered"] == 200
        assert {c["headers"]["webhook-id"] for c in calls} == {calls[0]["headers"]["webhook-id"]}
        assert calls[1]["body"]["data"]["task_id"] == task_id
    finally:
        server.stop()
        flaky.close()


def test_retry_after_on_429_stretches_the_wait(api: httpx.Client, mp3: Path) -> None:
    """The unified schedule says 1 s; the receiver asks for 3 s, and gets them."""
    busy = Receiver([(429, {"Retry-After": "3"})])
    try:
        track = import_file(api, mp3)["tracks"][0]["id"]
        submit_unified(api, track, busy.url)
        first, second = busy.wait_for(2)
        assert 3.0 <= second["at"] - first["at"] < 4.5
        assert second["headers"]["webhook-id"] == first["headers"]["webhook-id"]
    finally:
        busy.close()
