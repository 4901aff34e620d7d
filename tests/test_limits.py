"""Limits and switches answer with the contract's codes: 405 quota, 430 rate, 455 maintenance."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from conftest import MakeServer, Server, assert_envelope, import_file, wait_until, wavforge
from support.imports import import_tracks
from support.receiver import Receiver

GENERATE = "/api/v1/wav/generate"
SUBMIT = "/api/generate/submit"


def test_405_beyond_the_unfinished_task_quota(
    make_server: MakeServer, tmp_path: Path, mp3: Path, receiver: Receiver
) -> None:
    """With no worker, tasks stay pending; the third one is over a quota of two."""
    server = make_server(tmp_path, WAVFORGE_MAX_UNFINISHED="2")
    server.start_args = ["--no-worker"]
    server.start()
    try:
        with server.client(server.create_key(credits=10)["key"]) as api:
            audio_ids = import_tracks(api, mp3, 3)
            for audio_id in audio_ids[:2]:
                response = api.post(
                    GENERATE, json={"audioId": audio_id, "callBackUrl": receiver.url}
                )
                assert response.status_code == 200, response.text
            over = api.post(GENERATE, json={"audioId": audio_ids[2], "callBackUrl": receiver.url})
            body = assert_envelope(over, 405)
            assert "unfinished" in body["msg"]
            unified = api.post(
                SUBMIT, json={"model": "convert-to-wav", "input": {"audio_id": audio_ids[2]}}
            )
            assert unified.status_code == 405 and unified.json()["code"] == 405
            assert api.get("/api/v1/generate/credit").json()["data"] == 8  # no charge for a 405
    finally:
        server.stop()


def test_430_with_retry_after_per_key(make_server: MakeServer, tmp_path: Path) -> None:
    server = make_server(tmp_path, WAVFORGE_RATE_LIMIT="5/minute").start()
    try:
        first, second = server.create_key()["key"], server.create_key()["key"]
        with server.client(first) as api, server.client(second) as other:
            for _ in range(5):
                assert api.get("/api/v1/generate/credit").status_code == 200
            limited = api.get("/api/v1/generate/credit")
            body = assert_envelope(limited, 430)
            assert "5 requests per minute" in body["msg"]
            assert 1 <= int(limited.headers["Retry-After"]) <= 60
            unified = api.get("/api/generate/status/whatever")
            assert unified.status_code == 430 and unified.json()["code"] == 430
            assert "Retry-After" in unified.headers
            assert other.get("/api/v1/generate/credit").status_code == 200  # its own window
    finally:
        server.stop()


def admin_client(server: Server) -> httpx.Client:
    result = wavforge("keys", "create", "--name", "ops", "--admin", "--json", env=server.env)
    return server.client(json.loads(result.stdout)["key"])


def test_455_in_maintenance_reads_still_served_switched_live(
    own_server: Server, mp3: Path, receiver: Receiver
) -> None:
    own_server.start()
    with admin_client(own_server) as ops, own_server.client(own_server.create_key()["key"]) as api:
        track = import_file(api, mp3)
        done = api.post(GENERATE, json={"taskId": track["taskId"], "callBackUrl": receiver.url})
        task_id = done.json()["data"]["taskId"]
        other = import_file(api, mp3)

        switched = ops.put("/api/v1/admin/maintenance", json={"enabled": True})
        assert switched.status_code == 200 and switched.json()["data"] == {"enabled": True}

        def refused() -> bool:  # probed with an unknown id: 404 when open, 455 when not
            probe = {"taskId": "no-such-task", "callBackUrl": receiver.url}
            return api.post(GENERATE, json=probe).status_code == 455

        wait_until(refused, timeout=5)
        assert_envelope(
            api.post(GENERATE, json={"taskId": other["taskId"], "callBackUrl": receiver.url}), 455
        )
        unified = api.post(
            SUBMIT, json={"model": "convert-to-wav", "input": {"task_id": other["taskId"]}}
        )
        assert unified.status_code == 455 and unified.json()["code"] == 455
        with mp3.open("rb") as handle:
            assert_envelope(
                api.post("/api/v1/music/import", files={"file": ("a.mp3", handle)}), 455
            )
        # reads go on
        assert api.get("/api/v1/wav/record-info", params={"taskId": task_id}).status_code == 200
        assert api.get("/api/v1/generate/credit").status_code == 200
        assert api.get(f"/api/generate/status/{task_id}").status_code == 200
        assert ops.get("/api/v1/admin/maintenance").json()["data"] == {"enabled": True}

        # the command line switches it back on the running server, no restart
        result = wavforge("maintenance", "off", env=own_server.env)
        assert result.stdout.strip() == "maintenance off"

        def reopened() -> bool:
            probe = {"taskId": "no-such-task", "callBackUrl": receiver.url}
            return api.post(GENERATE, json=probe).status_code == 404

        wait_until(reopened, timeout=5)
        body = {"taskId": other["taskId"], "callBackUrl": receiver.url}
        assert api.post(GENERATE, json=body).status_code == 200


def test_admin_api_needs_an_admin_key(api: httpx.Client) -> None:
    for method, path in [
        ("GET", "/api/v1/admin/keys"),
        ("PUT", "/api/v1/admin/maintenance"),
        ("POST", "/api/v1/admin/accounts"),
        ("POST", "/api/v1/admin/keys/key_x/revoke"),
        ("POST", "/api/v1/admin/accounts/acct_x/credits"),
        ("GET", "/api/v1/admin/accounts/acct_x/ledger"),
    ]:
        response = api.request(method, path, json={"enabled": True, "name": "x", "amount": 1})
        assert assert_envelope(response, 403)["msg"] == "this endpoint needs an admin key"


def test_admin_api_manages_accounts_keys_and_credits(own_server: Server) -> None:
    own_server.start()
    with admin_client(own_server) as ops:
        created = ops.post("/api/v1/admin/accounts", json={"name": "customer", "credits": 3})
        issued = created.json()["data"]
        assert created.status_code == 200 and issued["key"].startswith("wf_")
        account_id, key_id = issued["accountId"], issued["keyId"]

        granted = ops.post(
            f"/api/v1/admin/accounts/{account_id}/credits", json={"amount": 7, "note": "pack"}
        )
        assert granted.json()["data"] == {"accountId": account_id, "balance": 10}
        overdraw = ops.post(f"/api/v1/admin/accounts/{account_id}/credits", json={"amount": -11})
        assert "below zero" in assert_envelope(overdraw, 400)["msg"]
        book = ops.get(f"/api/v1/admin/accounts/{account_id}/ledger").json()["data"]
        assert [(e["amount"], e["reason"], e["note"]) for e in book["entries"]] == [
            (7, "grant", "pack"), (3, "grant", "opening balance")
        ]  # fmt: skip
        missing = ops.post("/api/v1/admin/accounts/acct_nope/credits", json={"amount": 1})
        assert_envelope(missing, 404)

        listed = ops.get("/api/v1/admin/keys").json()["data"]
        row = next(r for r in listed if r["keyId"] == key_id)
        assert row["prefix"] == issued["key"][:10] and "key" not in row and row["credits"] == 10

        reset = ops.post(f"/api/v1/admin/keys/{key_id}/reset").json()["data"]
        with own_server.client(issued["key"]) as old, own_server.client(reset["key"]) as new:
            assert old.get("/api/v1/generate/credit").status_code == 401
            assert new.get("/api/v1/generate/credit").json()["data"] == 10
            assert ops.post(f"/api/v1/admin/keys/{reset['keyId']}/revoke").status_code == 200
            assert new.get("/api/v1/generate/credit").status_code == 401
        assert_envelope(ops.post(f"/api/v1/admin/keys/{reset['keyId']}/revoke"), 404)
    log = (own_server.data_dir.parent / f"serve-{own_server.port}.log").read_text()
    assert issued["key"] not in log and reset["key"] not in log  # keys are never logged


def test_credits_grant_and_ledger_on_the_command_line(own_server: Server) -> None:
    issued = own_server.create_key(credits=2)
    env = own_server.env
    granted = wavforge(
        "credits", "grant", issued["account_id"], "5", "--note", "bonus", "--json", env=env
    )
    assert '"balance": 7' in granted.stdout
    refused = wavforge("credits", "grant", "--", issued["account_id"], "-100", env=env, check=False)
    assert refused.returncode == 1 and "below zero" in refused.stderr
    book = wavforge("credits", "ledger", issued["account_id"], "--json", env=env)
    assert '"note": "bonus"' in book.stdout
    purge = wavforge("purge", "--json", env=env)
    assert '"files_deleted": 0' in purge.stdout


@pytest.mark.parametrize("state", ["on", "off"])
def test_maintenance_command(own_server: Server, state: str) -> None:
    assert (
        wavforge("maintenance", state, env=own_server.env).stdout.strip() == f"maintenance {state}"
    )
    assert (
        wavforge("maintenance", "status", env=own_server.env).stdout.strip()
        == f"maintenance {state}"
    )
