"""Backing up the embedded mode while it runs and restoring it, and moving it to scale-out:
every record and file arrives."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

import httpx

from conftest import Server, import_file, wait_for_source_peaks, wait_for_wav, wavforge
from support.deployments import S3Emulator, modes
from support.processes import free_port


class Converted(NamedTuple):
    """An account with 5 credits that converted one track: what must survive."""

    key: str
    track: str
    task_id: str
    wav: bytes
    ledger: list[dict[str, Any]]


def convert_one(server: Server, mp3: Path) -> Converted:
    key = server.create_key(credits=5)["key"]
    with server.client(key) as api:
        track = import_file(api, mp3)["tracks"][0]["id"]
        submitted = api.post("/api/generate/submit", json={
            "model": "convert-to-wav", "input": {"audio_id": track}
        })  # fmt: skip
        task_id = submitted.json()["data"]["task_id"]
        wav = httpx.get(wait_for_wav(api, task_id)["response"]["audioWavUrl"], timeout=30).content
        wait_for_source_peaks(api, track)  # measured after the import: one file more
        ledger = api.get("/api/v1/account/ledger").json()["data"]
    return Converted(key, track, task_id, wav, ledger)


def test_a_running_server_is_backed_up_and_restored_whole(tmp_path: Path, mp3: Path) -> None:
    first = Server(data_dir=tmp_path / "live", port=free_port()).start()
    try:
        key, track, task_id, wav, _ = convert_one(first, mp3)
        made = wavforge("backup", str(tmp_path / "copy"), "--json", env=first.env)
        facts = json.loads(made.stdout)
        assert facts["files"] == 4 and facts["database_bytes"] > 0  # source, WAV, their peaks
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


def test_the_embedded_mode_moves_to_postgresql_and_s3_whole(
    tmp_path: Path, mp3: Path, s3_emulator: S3Emulator
) -> None:
    embedded = Server(data_dir=tmp_path / "live", port=free_port()).start()
    try:
        key, track, task_id, wav, ledger = convert_one(embedded, mp3)
    finally:
        embedded.stop()

    for made in modes("scaleout", s3_emulator):
        target = made.deployment()
        url, storage = (target.env.pop(f"WAVFORGE_{n}_URL") for n in ("DATABASE", "STORAGE"))
        env = {**embedded.env, **target.env}
        moved = wavforge(
            "migrate-to", "--database-url", url, "--storage-url", storage, "--json", env=env
        )  # fmt: skip
        facts = json.loads(moved.stdout)
        # Source, WAV and their peaks; the customer's account and the tests' admin account.
        assert facts["files"] == 4 and facts["rows"]["accounts"] == 2
        again = wavforge("migrate-to", "--database-url", url, "--storage-url", storage, env=env,
                         check=False)  # fmt: skip
        assert again.returncode == 1 and "already holds accounts" in again.stderr

        target.env.update(WAVFORGE_DATABASE_URL=url, WAVFORGE_STORAGE_URL=storage)
        scaled = Server(data_dir=tmp_path / "scale", port=free_port(), deployment=target).start()
        try:
            with scaled.client(key) as api:
                assert api.get("/api/v1/generate/credit").json()["data"] == 4
                done = wait_for_wav(api, task_id)
                assert httpx.get(done["response"]["audioWavUrl"]).content == wav
                assert api.get("/api/v1/account/ledger").json()["data"] == ledger
                # New rows continue the copied ones' ids: a 24-bit WAV is charged and made.
                deeper = api.post("/api/generate/submit", json={
                    "model": "convert-to-wav", "input": {"audio_id": track, "bit_depth": 24}
                })  # fmt: skip
                assert wait_for_wav(api, deeper.json()["data"]["task_id"])["successFlag"] == (
                    "SUCCESS"
                )
                assert api.get("/api/v1/generate/credit").json()["data"] == 3
        finally:
            scaled.stop()
