"""Backing up the embedded mode while it runs, and restoring it: every record and file back."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from conftest import Server, free_port, import_file, wait_for_wav, wavforge


def test_a_running_server_is_backed_up_and_restored_whole(tmp_path: Path, mp3: Path) -> None:
    first = Server(data_dir=tmp_path / "live", port=free_port()).start()
    try:
        key = first.create_key(credits=5)["key"]
        with first.client(key) as api:
            track = import_file(api, mp3)["tracks"][0]["id"]
            submitted = api.post("/api/generate/submit", json={
                "model": "convert-to-wav", "input": {"audio_id": track}
            })  # fmt: skip
            task_id = submitted.json()["data"]["task_id"]
            done = wait_for_wav(api, task_id)
            wav = httpx.get(done["response"]["audioWavUrl"], timeout=30).content
        made = wavforge("backup", str(tmp_path / "copy"), "--json", env=first.env)
        facts = json.loads(made.stdout)
        assert facts["files"] >= 2 and facts["database_bytes"] > 0  # the source and the WAV
    finally:
        first.stop()

    restored = Server(data_dir=tmp_path / "copy", port=free_port()).start()
    try:
        with restored.client(key) as api:  # the key, the account and its balance came along
            assert api.get("/api/v1/generate/credit").json()["data"] == 4
            again = wait_for_wav(api, task_id)
            assert again["successFlag"] == "SUCCESS"
            assert httpx.get(again["response"]["audioWavUrl"], timeout=30).content == wav
            listed = api.get("/api/v1/account/tracks").json()["data"]
            assert [t["id"] for t in listed] == [track]
    finally:
        restored.stop()


def test_a_backup_refuses_what_it_cannot_copy_faithfully(tmp_path: Path) -> None:
    server = Server(data_dir=tmp_path / "live", port=free_port())
    wavforge("keys", "list", env=server.env)  # makes the database
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "mine.txt").write_text("keep")
    refused = wavforge("backup", str(busy), env=server.env, check=False)
    assert refused.returncode == 1 and "not empty" in refused.stderr
    inside = wavforge("backup", str(tmp_path / "live" / "b"), env=server.env, check=False)
    assert inside.returncode == 1 and "inside the data directory" in inside.stderr
    remote = {**server.env, "WAVFORGE_DATABASE_URL": "postgresql://u:p@127.0.0.1:1/none"}
    served = wavforge("backup", str(tmp_path / "x"), env=remote, check=False)
    assert served.returncode == 1 and "pg_dump" in served.stderr
    assert (busy / "mine.txt").read_text() == "keep" and not (tmp_path / "x").exists()
