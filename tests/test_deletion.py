"""Deleting tracks, end to end on both storage backends: files gone, links 410, records kept,
ledger untouched; through the API, the client, the command line and an admin."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from wavforge_client import ApiError, Client

from conftest import MakeServer, Server, assert_envelope, import_file, wait_for_wav, wavforge
from support.receiver import Receiver

GENERATE = "/api/v1/wav/generate"


def converted(api: httpx.Client, track_id: str, receiver: Receiver) -> dict[str, Any]:
    answer = api.post(GENERATE, json={"audioId": track_id, "callBackUrl": receiver.url})
    return wait_for_wav(api, answer.json()["data"]["taskId"])


def test_a_deleted_track_takes_its_files_and_leaves_its_records(
    server: Server, mp3: Path, receiver: Receiver
) -> None:
    key = server.create_key(credits=5)["key"]
    with server.client(key) as api:
        music = api.post(
            "/api/v1/music/import",
            files=[("file", ("a.mp3", mp3.read_bytes())), ("file", ("b.mp3", mp3.read_bytes()))],
        ).json()["data"]
        doomed, kept = (track["id"] for track in music["tracks"])
        record = converted(api, doomed, receiver)
        wav_link, source_link = record["response"]["audioWavUrl"], music["tracks"][0]["audioUrl"]
        assert httpx.get(wav_link).status_code == httpx.get(source_link).status_code == 200
        ledger_before = api.get("/api/v1/account/ledger").json()["data"]

        answer = api.delete(f"/api/v1/account/tracks/{doomed}")
        assert answer.status_code == 200, answer.text
        assert answer.json()["data"] == {
            "audioId": doomed,
            "deleted": True,
            "wavTaskIds": [record["taskId"]],
        }

        assert server.stored(f"sources/{doomed}.") == []
        assert server.stored(f"wav/{record['taskId']}") == []
        assert server.stored(f"sources/{kept}.") != []  # its sibling is untouched
        assert httpx.get(wav_link).status_code == 410
        assert httpx.get(source_link).status_code == 410

        after = api.get("/api/v1/wav/record-info", params={"taskId": record["taskId"]})
        kept_record = after.json()["data"]
        assert kept_record["successFlag"] == "SUCCESS" and kept_record["analysis"]
        assert kept_record["response"]["audioWavUrl"] is None
        assert "deleted" in kept_record["errorMessage"]
        unified = api.get(f"/api/generate/status/{record['taskId']}").json()["data"]
        assert unified["files"] == [] and "deleted" in unified["error_message"]

        assert_envelope(
            api.post(GENERATE, json={"audioId": doomed, "callBackUrl": "https://x.example/cb"}), 404
        )
        again = api.post(
            "/api/generate/submit", json={"model": "convert-to-wav", "input": {"audio_id": doomed}}
        )
        assert again.status_code == 404
        tracks = api.get("/api/v1/generate/record-info", params={"taskId": music["taskId"]})
        assert [t["id"] for t in tracks.json()["data"]["response"]["sunoData"]] == [kept]
        assert doomed not in [t["id"] for t in api.get("/api/v1/account/tracks").json()["data"]]

        assert api.get("/api/v1/account/ledger").json()["data"] == ledger_before
        assert_envelope(api.delete(f"/api/v1/account/tracks/{doomed}"), 404)
    with server.client(server.create_key()["key"]) as stranger:
        assert_envelope(stranger.delete(f"/api/v1/account/tracks/{kept}"), 404)


def test_a_track_being_converted_cannot_be_deleted(
    make_server: MakeServer, tmp_path: Path, mp3: Path, receiver: Receiver
) -> None:
    server = make_server(tmp_path)
    server.start_args = ["--no-worker"]  # the conversion stays pending
    server.start()
    try:
        with server.client(server.create_key()["key"]) as api:
            track = import_file(api, mp3)["tracks"][0]["id"]
            answer = api.post(GENERATE, json={"audioId": track, "callBackUrl": receiver.url})
            refused = assert_envelope(api.delete(f"/api/v1/account/tracks/{track}"), 409)
            assert refused["data"] == {"taskId": answer.json()["data"]["taskId"]}
            assert server.stored(f"sources/{track}.") != []
    finally:
        server.stop()


def test_the_client_and_the_command_line_delete_tracks(
    server: Server, mp3: Path, receiver: Receiver
) -> None:
    account = server.create_key()
    with Client(server.url, account["key"]) as wf:
        first, second = (wf.import_files([mp3]).tracks[0] for _ in range(2))
        assert wf.delete_track(first) == ()
        with pytest.raises(ApiError) as gone:
            wf.delete_track(first)
        assert gone.value.code == 404
    env = server.env | {"WAVFORGE_URL": server.url, "WAVFORGE_API_KEY": account["key"]}
    result = wavforge("tracks", "delete", second.id, "nope", "--json", env=env, check=False)
    assert result.returncode == 1  # one of them failed, and is named
    done, failed = json.loads(result.stdout)
    assert (done["ok"], done["status"], failed["ok"]) == (True, "DELETED", False)
    assert failed["error"]["code"] == 404
    assert server.stored(f"sources/{second.id}.") == []


def test_an_admin_deletes_an_accounts_data(
    make_server: MakeServer, tmp_path: Path, mp3: Path
) -> None:
    server = make_server(tmp_path).start()
    try:
        other = server.create_key(name="not an admin")
        customer = server.create_key()
        with server.client(customer["key"]) as api:
            ids = [import_file(api, mp3)["tracks"][0]["id"] for _ in range(2)]
        admin_key = json.loads(
            wavforge("keys", "create", "--name", "boss", "--admin", "--json", env=server.env).stdout
        )["key"]
        with server.client(admin_key) as boss:
            path = f"/api/v1/admin/accounts/{customer['account_id']}/tracks"
            answer = boss.delete(path)
            assert answer.json()["data"] == {
                "accountId": customer["account_id"],
                "tracksDeleted": 2,
                "wavTasksAffected": 0,
            }
            assert_envelope(boss.delete("/api/v1/admin/accounts/acct_nope/tracks"), 404)
        with server.client(other["key"]) as not_admin:
            assert_envelope(not_admin.delete(path), 403)
        assert all(server.stored(f"sources/{track}.") == [] for track in ids)
    finally:
        server.stop()


def test_sources_can_be_expired_by_the_operator(
    make_server: MakeServer, tmp_path: Path, mp3: Path
) -> None:
    server = make_server(tmp_path, WAVFORGE_SOURCE_RETENTION_SECONDS="1").start()
    try:
        with server.client(server.create_key()["key"]) as api:
            track = import_file(api, mp3)["tracks"][0]
            time.sleep(1.2)
            result = json.loads(wavforge("purge", "--json", env=server.env).stdout)
            assert result["expired_tracks_deleted"] == 1
            assert server.stored(f"sources/{track['id']}.") == []
            assert httpx.get(track["audioUrl"]).status_code == 410
    finally:
        server.stop()
