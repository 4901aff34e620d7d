"""An operator looking into one account and granting or removing admin rights, through
``/api/v1/admin/accounts/{accountId}`` on a real server, in both deployment modes (the usage
figures are SQL aggregates over JSON that each database computes its own way)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from jsonschema import Draft202012Validator

from conftest import (
    Server,
    assert_envelope,
    break_stored_source,
    import_file,
    wait_for_wav,
    wavforge,
)
from support.receiver import Receiver

STATES = (
    "PENDING",
    "RUNNING",
    "SUCCESS",
    "CREATE_TASK_FAILED",
    "GENERATE_WAV_FAILED",
    "CALLBACK_EXCEPTION",
)


def data(response: httpx.Response) -> Any:
    return assert_envelope(response, 200)["data"]


def admin_key(server: Server, name: str = "ops") -> dict[str, Any]:
    made = wavforge("keys", "create", "--name", name, "--admin", "--json", env=server.env)
    return dict(json.loads(made.stdout))


def convert(api: httpx.Client, track_id: str, receiver: Receiver, **options: int) -> str:
    body = {"audioId": track_id, "callBackUrl": receiver.url, **options}
    task_id: str = data(api.post("/api/v1/wav/generate", json=body))["taskId"]
    return task_id


def assert_as_declared(server: Server, method: str, path: str, response: httpx.Response) -> None:
    """The answer matches what ``/openapi.json`` declares for the operation and its status."""
    document = httpx.get(f"{server.url}/openapi.json").raise_for_status().json()
    declared = document["paths"][path][method]["responses"][str(response.status_code)]
    schema = declared["content"]["application/json"]["schema"]
    Draft202012Validator({**schema, "components": document["components"]}).validate(response.json())


def utc(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)


def test_an_account_in_detail_has_its_keys_and_exact_usage(
    server: Server, mp3: Path, receiver: Receiver, tmp_path: Path
) -> None:
    ops = admin_key(server)
    customer = server.create_key(credits=10, name="Customer")
    with server.client(customer["key"]) as api:
        pair = api.post(
            "/api/v1/music/import",
            files=[("file", ("a.mp3", mp3.read_bytes())), ("file", ("b.mp3", mp3.read_bytes()))],
        )
        first, second = (track["id"] for track in data(pair)["tracks"])
        import_file(api, mp3)  # a second import, never converted
        spare = data(api.post("/api/v1/account/keys", json={"name": "spare"}))
        data(api.post(f"/api/v1/account/keys/{spare['keyId']}/revoke"))

        made = [convert(api, first, receiver), convert(api, first, receiver, bitDepth=24)]
        break_stored_source(server, second, tmp_path)
        failed = convert(api, second, receiver)
        records = [wait_for_wav(api, task_id) for task_id in (*made, failed)]
    assert [r["successFlag"] for r in records] == ["SUCCESS", "SUCCESS", "GENERATE_WAV_FAILED"]
    assert [r["analysis"]["duration"] for r in records[:2]] == [4.0, 4.0]

    with server.client(ops["key"]) as admin:
        asked = admin.get(f"/api/v1/admin/accounts/{customer['account_id']}")
        found = data(asked)
    assert customer["key"] not in asked.text and spare["key"] not in asked.text
    assert_as_declared(server, "get", "/api/v1/admin/accounts/{account_id}", asked)
    usage = found.pop("usage")
    keys = found.pop("keys")
    assert found == {
        "accountId": customer["account_id"],
        "name": "Customer",
        "credits": 8,  # three conversions charged, the failed one refunded
        "admin": False,
        "createTime": found["createTime"],
        "activeKeys": 1,
        "profile": None,
    }
    assert [(k["keyId"], k["name"], k["revoked"]) for k in keys] == [
        (customer["key_id"], "Customer", False),
        (spare["keyId"], "spare", True),
    ]
    assert keys[0]["prefix"] == customer["key"][:10] and keys[0]["lastUsedTime"] is not None
    assert keys[0]["revokeTime"] is None and keys[1]["revokeTime"] is not None
    assert keys[1]["lastUsedTime"] is None  # never used
    expected = {
        "imports": 2,
        "tracks": 3,
        "wavTasks": dict.fromkeys(STATES, 0) | {"SUCCESS": 2, "GENERATE_WAV_FAILED": 1},
        "creditsSpent": 2,
        "secondsConverted": 8.0,
    }
    assert usage["allTime"] == expected
    assert usage["last30Days"] == expected  # all of it happened just now
    window = datetime.now(UTC) - utc(usage["since"])
    assert timedelta(days=30) <= window < timedelta(days=30, minutes=5)


def test_an_unknown_account_or_another_key_is_refused_as_elsewhere(
    server: Server, api: httpx.Client, account: dict[str, Any]
) -> None:
    path = f"/api/v1/admin/accounts/{account['account_id']}"
    assert_envelope(api.get(path), 403)
    assert_envelope(api.put(f"{path}/admin", json={"admin": True}), 403)
    with httpx.Client(base_url=server.url) as anonymous:
        assert_envelope(anonymous.get(path), 401)
        assert_envelope(anonymous.put(f"{path}/admin", json={"admin": True}), 401)
    with server.client(admin_key(server)["key"]) as admin:
        assert_envelope(admin.get("/api/v1/admin/accounts/acct_nobody"), 404)
        nobody = admin.put("/api/v1/admin/accounts/acct_nobody/admin", json={"admin": True})
        assert_envelope(nobody, 404)
        assert_envelope(admin.put(f"{path}/admin", json={"admin": "yes"}), 400)
        assert_envelope(admin.put(f"{path}/admin", json={}), 400)


FLAG = "/api/v1/admin/accounts/{account_id}/admin"


def test_admin_rights_move_but_the_last_admin_keeps_them(own_server: Server) -> None:
    """On a server of its own, where the admin accounts are only the test's."""
    own_server.start()
    first = admin_key(own_server, "first")
    with own_server.client(first["key"]) as root:
        made = data(root.post("/api/v1/admin/accounts", json={"name": "second", "admin": True}))
        second_flag = FLAG.format(account_id=made["accountId"])
        first_flag = FLAG.format(account_id=first["account_id"])
        with own_server.client(made["key"]) as second:
            assert data(second.get(f"/api/v1/admin/accounts/{made['accountId']}"))["admin"]

            assert_envelope(root.put(second_flag, json={}), 400)
            removed = root.put(second_flag, json={"admin": False})
            assert data(removed) == {"accountId": made["accountId"], "admin": False}
            assert_as_declared(own_server, "put", FLAG, removed)
            assert_envelope(second.get("/api/v1/admin/accounts"), 403)  # at once

            conflict = root.put(first_flag, json={"admin": False})
            refused = assert_envelope(conflict, 409)
            assert "last admin account with a working key" in refused["msg"]
            assert refused["data"] is None
            assert_as_declared(own_server, "put", FLAG, conflict)
            assert data(root.get(f"/api/v1/admin/accounts/{first['account_id']}"))["admin"]

            granted = root.put(second_flag, json={"admin": True})
            assert data(granted) == {"accountId": made["accountId"], "admin": True}
            demoted = second.put(first_flag, json={"admin": False})
            assert data(demoted) == {"accountId": first["account_id"], "admin": False}
        assert_envelope(root.get("/api/v1/admin/accounts"), 403)
    listed = wavforge("keys", "list", "--json", env=own_server.env).stdout
    admins = {row["account_id"] for row in json.loads(listed) if row["admin"]}
    assert admins == {made["accountId"]}
