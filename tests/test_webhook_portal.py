"""The webhook portal over real HTTP: signed test events through the outbox to a real
receiver, every try shown in full (signatures masked), resends with the same webhook-id,
paging and filters, and nobody else's deliveries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from standardwebhooks.webhooks import Webhook

from conftest import MakeServer, Server, assert_envelope, wait_until
from support.receiver import Receiver

TEST = "/api/v1/account/webhooks/test"
DELIVERIES = "/api/v1/account/deliveries"


def send_test(api: httpx.Client, url: str) -> str:
    response = api.post(TEST, json={"url": url})
    data = assert_envelope(response, 200)["data"]
    assert data["status"] == "PENDING"
    return str(data["webhookId"])


def detail(api: httpx.Client, webhook_id: str) -> dict[str, Any]:
    return dict(assert_envelope(api.get(f"{DELIVERIES}/{webhook_id}"), 200)["data"])


def settled(api: httpx.Client, webhook_id: str, status: str, tries: int) -> dict[str, Any]:
    def ready() -> dict[str, Any] | None:
        found = detail(api, webhook_id)
        return found if found["status"] == status and len(found["attempts"]) == tries else None

    return dict(wait_until(ready))


def header(pairs: list[list[str]], name: str) -> str:
    (value,) = [v for k, v in pairs if k.lower() == name]
    return value


def test_a_test_event_arrives_signed_and_its_try_shows_what_went_and_came_back(
    api: httpx.Client, account: dict[str, Any]
) -> None:
    answer = b'{"ok":true,"note":"<script>alert(1)</script>"}' + b"x" * 5000
    receiver = Receiver([(200, {"X-Receipt": "r-1"}, answer)])
    try:
        webhook_id = send_test(api, receiver.url)
        (call,) = receiver.wait_for(1)
        body = Webhook(account["webhook_secret"]).verify(call["raw"], call["headers"])
        assert body["type"] == "test" and body["data"]["webhookId"] == webhook_id
        assert call["headers"]["webhook-id"] == webhook_id

        found = settled(api, webhook_id, "DELIVERED", 1)
        assert found["kind"] == "test" and found["taskId"] is None
        assert found["body"].encode() == call["raw"]  # the exact bytes signed
        (attempt,) = found["attempts"]
        sent = attempt["requestHeaders"]
        assert header(sent, "webhook-id") == webhook_id
        assert header(sent, "webhook-timestamp") == call["headers"]["webhook-timestamp"]
        assert header(sent, "webhook-signature") == "v1,****"
        assert header(sent, "x-webhook-signature") == "****"
        real = call["headers"]["webhook-signature"].partition(",")[2]
        assert real not in str(found)  # the signature itself is never stored or shown
        assert attempt["statusCode"] == 200
        assert header(attempt["responseHeaders"], "x-receipt") == "r-1"
        assert attempt["responseBody"] == answer[:2048].decode()  # the first 2 KiB only
        assert found["nextAttemptTime"] is None
    finally:
        receiver.close()


def test_a_failed_try_shows_the_next_retry_and_a_resend_keeps_the_webhook_id(
    api: httpx.Client, account: dict[str, Any]
) -> None:
    receiver = Receiver([(500, {}, b"boom")])
    try:
        webhook_id = send_test(api, receiver.url)
        receiver.wait_for(1)
        failed = settled(api, webhook_id, "PENDING", 1)
        assert failed["nextAttemptTime"] is not None  # the schedule's next try (60 s here)
        assert failed["attempts"][0]["statusCode"] == 500
        assert failed["attempts"][0]["responseBody"] == "boom"
        pending = api.get(DELIVERIES, params={"state": "pending"}).json()["data"]
        assert webhook_id in [row["webhookId"] for row in pending["deliveries"]]
        delivered = api.get(DELIVERIES, params={"state": "DELIVERED"}).json()["data"]
        assert webhook_id not in [row["webhookId"] for row in delivered["deliveries"]]

        resent = api.post(f"{DELIVERIES}/{webhook_id}/resend")
        assert assert_envelope(resent, 200)["data"]["webhookId"] == webhook_id
        first, second = receiver.wait_for(2)
        assert second["headers"]["webhook-id"] == first["headers"]["webhook-id"] == webhook_id
        assert int(second["headers"]["webhook-timestamp"]) >= int(
            first["headers"]["webhook-timestamp"]
        )
        secret = account["webhook_secret"]
        assert Webhook(secret).verify(second["raw"], second["headers"])["type"] == "test"
        done = settled(api, webhook_id, "DELIVERED", 2)
        assert [a["statusCode"] for a in done["attempts"]] == [500, 200]
        assert done["nextAttemptTime"] is None
    finally:
        receiver.close()


def test_another_account_can_neither_see_nor_resend_a_delivery(
    server: Server, api: httpx.Client, receiver: Receiver
) -> None:
    webhook_id = send_test(api, receiver.url)
    receiver.wait_for(1)
    with server.client(server.create_key()["key"]) as other:
        assert_envelope(other.get(f"{DELIVERIES}/{webhook_id}"), 404)
        assert_envelope(other.post(f"{DELIVERIES}/{webhook_id}/resend"), 404)
        listed = assert_envelope(other.get(DELIVERIES), 200)["data"]
        assert listed["deliveries"] == [] and sum(listed["counts"].values()) == 0
    with server.client() as nobody:
        assert nobody.get(f"{DELIVERIES}/{webhook_id}").status_code == 401
    settled(api, webhook_id, "DELIVERED", 1)
    assert len(receiver.calls) == 1  # nothing was sent again


def test_deliveries_page_by_cursor_with_counts_and_filters(
    server: Server, receiver: Receiver
) -> None:
    with server.client(server.create_key()["key"]) as api:
        sent = [send_test(api, receiver.url) for _ in range(3)]
        receiver.wait_for(3)
        for webhook_id in sent:
            settled(api, webhook_id, "DELIVERED", 1)
        first = assert_envelope(api.get(DELIVERIES, params={"limit": 2}), 200)["data"]
        assert first["counts"] == {"PENDING": 0, "DELIVERED": 3, "FAILED": 0}
        assert len(first["deliveries"]) == 2 and first["nextCursor"]
        assert first["prevCursor"] is None and first["total"] == 3
        rest = api.get(DELIVERIES, params={"limit": 2, "cursor": first["nextCursor"]})
        second = assert_envelope(rest, 200)["data"]
        assert second["nextCursor"] is None and second["prevCursor"]
        seen = [row["webhookId"] for row in first["deliveries"] + second["deliveries"]]
        assert sorted(seen) == sorted(sent) and seen[0] == sent[-1]  # newest first, once each
        back = api.get(DELIVERIES, params={"limit": 2, "cursor": second["prevCursor"]})
        assert assert_envelope(back, 200)["data"]["deliveries"] == first["deliveries"]
        (found,) = api.get(DELIVERIES, params={"q": sent[1]}).json()["data"]["deliveries"]
        assert found["webhookId"] == sent[1]
        today = found["createTime"][:10]
        assert api.get(DELIVERIES, params={"since": today}).json()["data"]["total"] == 3
        assert api.get(DELIVERIES, params={"until": "2000-01-01"}).json()["data"]["total"] == 0
        assert_envelope(api.get(DELIVERIES, params={"since": "soon"}), 400)
        by_task = api.get(DELIVERIES, params={"taskId": "no-such-task"}).json()["data"]
        assert by_task["deliveries"] == [] and by_task["counts"]["DELIVERED"] == 0
        assert_envelope(api.get(DELIVERIES, params={"cursor": "not-a-cursor"}), 400)
        assert_envelope(api.get(DELIVERIES, params={"state": "lost"}), 400)
        assert_envelope(api.get(f"{DELIVERIES}/msg_nothing"), 404)
        assert_envelope(api.post(f"{DELIVERIES}/msg_nothing/resend"), 404)


def test_test_event_urls_are_checked_like_callback_urls(
    make_server: MakeServer, tmp_path: Path
) -> None:
    server = make_server(tmp_path, WAVFORGE_CALLBACK_ALLOW_PRIVATE="false").start()
    try:
        with server.client(server.create_key()["key"]) as api:
            for url in (
                "http://127.0.0.1:9/hook",
                "http://10.0.0.8/hook",
                "http://169.254.169.254/latest",
                "http://[::1]/hook",
                "http://2130706433/hook",
                "ftp://example.com/hook",
                "http://user:pw@example.com/hook",
                "",
            ):
                response = api.post(TEST, json={"url": url})
                assert_envelope(response, 400)
            assert_envelope(api.post(TEST, json={"url": "https://e.com/" + "a" * 2048}), 413)
            assert_envelope(api.post(TEST, json={}), 400)
            listed = api.get(DELIVERIES).json()["data"]
            assert listed["deliveries"] == []  # nothing refused was queued
    finally:
        server.stop()
