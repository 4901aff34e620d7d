"""An account managing itself through /api/v1/account, and the admin's account list."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from conftest import Server, assert_envelope, import_file, wait_for_wav, wavforge
from support.imports import import_tracks
from support.receiver import Receiver


def data(response: httpx.Response) -> Any:
    return assert_envelope(response, 200)["data"]


def convert(track_id: str, receiver: Receiver, **options: int) -> dict[str, str | int]:
    return {"audioId": track_id, "callBackUrl": receiver.url, **options}


def test_overview_shows_balance_usage_and_webhook_secret(
    api: httpx.Client, account: dict[str, Any], mp3: Path, receiver: Receiver
) -> None:
    before = data(api.get("/api/v1/account"))
    assert before["accountId"] == account["account_id"]
    assert before["credits"] == 100 and before["activeKeys"] == 1 and before["admin"] is False
    assert before["webhookSecret"] == account["webhook_secret"]
    assert before["usage"] == {"tracks": 0, "wavTasks": {}, "creditsSpent": 0}

    track = import_file(api, mp3)["tracks"][0]
    task = data(api.post("/api/v1/wav/generate", json=convert(track["id"], receiver)))
    wait_for_wav(api, task["taskId"])

    after = data(api.get("/api/v1/account"))
    cost = 100 - after["credits"]
    assert after["usage"] == {"tracks": 1, "wavTasks": {"SUCCESS": 1}, "creditsSpent": cost}

    rotated = data(api.post("/api/v1/account/webhook-secret/rotate"))
    assert data(api.get("/api/v1/account"))["webhookSecret"] == rotated["webhookSecret"]
    assert rotated["webhookSecret"] != account["webhook_secret"]


def test_keys_are_managed_within_the_account(server: Server, api: httpx.Client) -> None:
    created = data(api.post("/api/v1/account/keys", json={"name": "laptop"}))
    assert created["key"].startswith("wf_") and created["webhookSecret"]
    with server.client(created["key"]) as laptop:
        assert data(laptop.get("/api/v1/generate/credit")) == 100

    listed = data(api.get("/api/v1/account/keys"))
    assert [k["name"] for k in listed] == ["test", "laptop"]
    assert created["key"] not in str(listed)

    replaced = data(api.post(f"/api/v1/account/keys/{created['keyId']}/reset"))
    with server.client(created["key"]) as old, server.client(replaced["key"]) as new:
        assert_envelope(old.get("/api/v1/generate/credit"), 401)
        assert data(new.get("/api/v1/generate/credit")) == 100
    data(api.post(f"/api/v1/account/keys/{replaced['keyId']}/revoke"))
    states = {k["keyId"]: k["revoked"] for k in data(api.get("/api/v1/account/keys"))}
    assert states[created["keyId"]] and states[replaced["keyId"]]
    assert_envelope(api.post(f"/api/v1/account/keys/{replaced['keyId']}/revoke"), 404)


def test_another_accounts_key_is_out_of_reach(server: Server, api: httpx.Client) -> None:
    other = server.create_key(name="other")
    for action in ("revoke", "reset"):
        assert_envelope(api.post(f"/api/v1/account/keys/{other['key_id']}/{action}"), 404)
    with server.client(other["key"]) as still_works:
        assert data(still_works.get("/api/v1/generate/credit")) == 100
    assert other["key_id"] not in str(data(api.get("/api/v1/account/keys")))


def test_tracks_and_tasks_are_listed_newest_first(
    api: httpx.Client, mp3: Path, receiver: Receiver
) -> None:
    first = import_file(api, mp3, title="First")["tracks"][0]
    second = import_file(api, mp3, title="Second")["tracks"][0]
    task = data(api.post("/api/v1/wav/generate", json=convert(first["id"], receiver)))
    done = wait_for_wav(api, task["taskId"])

    tracks = data(api.get("/api/v1/account/tracks"))
    assert [t["id"] for t in tracks] == [second["id"], first["id"]]
    assert tracks[1]["wavTaskId"] == task["taskId"] and tracks[1]["wavStatus"] == "SUCCESS"
    assert tracks[0]["wavTaskId"] is None and tracks[0]["sourceFormat"] == "mp3"
    assert tracks[1]["audioUrl"].startswith("http")

    older = data(api.get("/api/v1/account/tracks", params={"before": second["id"]}))
    assert [t["id"] for t in older] == [first["id"]]

    (listed,) = data(api.get("/api/v1/account/wav-tasks"))
    assert listed["taskId"] == task["taskId"] and listed["title"] == "First"
    assert listed["status"] == "SUCCESS" and listed["progress"] == 1.0
    assert listed["response"]["audioWavUrl"] == done["response"]["audioWavUrl"]
    assert_envelope(api.get("/api/v1/account/wav-tasks", params={"limit": 0}), 400)

    # A second format of the track: the track is still listed once, with its newest WAV task.
    wider = data(api.post("/api/v1/wav/generate", json=convert(first["id"], receiver, bitDepth=24)))
    tracks = data(api.get("/api/v1/account/tracks"))
    assert [(t["id"], t["wavTaskId"]) for t in tracks] == [
        (second["id"], None),
        (first["id"], wider["taskId"]),
    ]


def page_through(api: httpx.Client, path: str, key: str, limit: int = 2) -> list[list[str]]:
    """Every page of a listing as its ids, paging back with the last id as ``before``."""
    found: list[list[str]] = []
    params: dict[str, str | int] = {"limit": limit}
    while page := [row[key] for row in data(api.get(path, params=params))]:
        found.append(page)
        params["before"] = page[-1]
    return found


def test_paging_sees_every_row_once_when_rows_share_a_time(
    api: httpx.Client, mp3: Path, receiver: Receiver
) -> None:
    older = import_file(api, mp3)["tracks"][0]["id"]
    together = import_tracks(api, mp3, 5)  # one request: one created_at for all five
    listed = [t["id"] for t in data(api.get("/api/v1/account/tracks"))]
    assert set(listed[:5]) == set(together) and listed[5:] == [older]

    pages = page_through(api, "/api/v1/account/tracks", "id")
    assert [len(page) for page in pages] == [2, 2, 2]
    assert [row for page in pages for row in page] == listed

    tasks = [
        data(api.post("/api/v1/wav/generate", json=convert(track, receiver)))["taskId"]
        for track in together[:3]
    ]
    listed = [t["taskId"] for t in data(api.get("/api/v1/account/wav-tasks"))]
    assert listed == tasks[::-1]
    pages = page_through(api, "/api/v1/account/wav-tasks", "taskId")
    assert [len(page) for page in pages] == [2, 1]
    assert [row for page in pages for row in page] == listed
    for task in tasks:
        wait_for_wav(api, task)


def test_paging_from_an_unknown_or_foreign_row_is_not_found(
    server: Server, api: httpx.Client, mp3: Path
) -> None:
    other = server.create_key(name="other")
    with server.client(other["key"]) as stranger:
        theirs = import_file(stranger, mp3)["tracks"][0]["id"]
    mine = import_file(api, mp3)["tracks"][0]["id"]
    for path in ("/api/v1/account/tracks", "/api/v1/account/wav-tasks"):
        for cursor in ("no-such-row", theirs):
            body = assert_envelope(api.get(path, params={"before": cursor}), 404)
            assert cursor in body["msg"] and "page from" in body["msg"]
    assert data(api.get("/api/v1/account/tracks", params={"before": mine})) == []
    body = assert_envelope(api.get("/api/v1/account/wav-tasks", params={"before": mine}), 404)
    assert "WAV task" in body["msg"]  # a track id is no WAV task's id


def test_only_admins_list_accounts(
    server: Server, api: httpx.Client, account: dict[str, Any]
) -> None:
    assert_envelope(api.get("/api/v1/admin/accounts"), 403)
    made = wavforge("keys", "create", "--name", "ops", "--admin", "--json", env=server.env)
    ops_key = json.loads(made.stdout)
    with server.client(ops_key["key"]) as ops:
        accounts = {row["accountId"]: row for row in data(ops.get("/api/v1/admin/accounts"))}
    assert accounts[ops_key["account_id"]]["admin"] is True
    assert accounts[account["account_id"]]["activeKeys"] == 1
    assert "webhookSecret" not in str(accounts)  # an operator manages accounts, not their secrets
