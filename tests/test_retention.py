"""Retention (CONTRACT §7): files expire on time, records stay, links answer 410, and a purge
killed at any point and run again leaves no expired file and deletes no live one."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import httpx

from wavforge.core import accounts, clock
from wavforge.db.models import MusicTask, Track, WavTask
from wavforge.runtime import build_runtime

from conftest import MakeServer, Server, import_file, wait_for_wav, wait_until
from support.receiver import Receiver

GENERATE = "/api/v1/wav/generate"


def test_a_wav_expires_its_record_stays_and_the_track_converts_again(
    make_server: MakeServer, tmp_path: Path, mp3: Path, receiver: Receiver
) -> None:
    server = make_server(tmp_path, WAVFORGE_RETENTION_SECONDS="4", WAVFORGE_PURGE_SECONDS="0.5")
    server.start()
    try:
        with server.client(server.create_key()["key"]) as api:
            track = import_file(api, mp3)
            body = {"taskId": track["taskId"], "callBackUrl": receiver.url}
            task_id = api.post(GENERATE, json=body).json()["data"]["taskId"]
            record = wait_for_wav(api, task_id)
            link = record["response"]["audioWavUrl"]
            assert httpx.get(link).status_code == 200 and server.stored(f"wav/{task_id}")
            assert api.post(GENERATE, json=body).status_code == 409  # still live

            wait_until(lambda: not server.stored(f"wav/{task_id}"), timeout=15)  # purged
            gone = httpx.get(link)
            assert gone.status_code == 410 and gone.json()["code"] == 410
            expired = api.get("/api/v1/wav/record-info", params={"taskId": task_id})
            data = expired.json()["data"]
            assert data["successFlag"] == "SUCCESS" and data["response"]["audioWavUrl"] is None
            assert "expired" in data["errorMessage"]
            unified = api.get(f"/api/generate/status/{task_id}").json()["data"]
            assert unified["files"] == [] or all(f["audio_url"] is None for f in unified["files"])
            assert "expired" in unified["error_message"]

            music = api.get("/api/v1/generate/record-info", params={"taskId": track["taskId"]})
            source = music.json()["data"]["response"]["sunoData"][0]["audioUrl"]
            assert httpx.get(source).status_code == 200  # sources are kept for re-conversion

            again = api.post(GENERATE, json=body)
            assert again.status_code == 200 and again.json()["data"]["taskId"] != task_id
    finally:
        server.stop()


def seed_wavs(server: Server, count: int, live_every: int) -> tuple[list[str], list[str]]:
    """Rows and files of succeeded conversions: every ``live_every``-th one is still live,
    the rest expired an hour ago. Returns the keys of (expired files, live files)."""
    runtime = build_runtime(server.settings())
    db, storage = runtime.context.db, runtime.context.storage
    account_id = accounts.create_account(db, "seed").account_id
    now = clock.now()
    keys: tuple[list[str], list[str]] = ([], [])
    with db.write() as session:
        session.add(
            MusicTask(
                id="music-seed", account_id=account_id, kind="import", status="SUCCESS",
                params={}, created_at=now,
            )
        )  # fmt: skip
        session.add(
            Track(
                id="track-seed", music_task_id="music-seed", account_id=account_id, position=0,
                title="t", tags="", prompt="", duration=1.0, source_key="sources/x.mp3",
                source_name="x.mp3", source_format="mp3", source_codec="mp3", sample_rate=44100,
                channels=2, created_at=now,
            )
        )  # fmt: skip
        for number in range(count):
            is_expired = number % live_every != 0
            task_id = f"task-{number:06d}"
            key = f"wav/{task_id}.wav"
            offset = timedelta(hours=-1) if is_expired else timedelta(hours=1)
            session.add(
                WavTask(
                    id=task_id, account_id=account_id, track_id="track-seed", dialect="suno",
                    options={}, status="SUCCESS", wav_key=key, wav_bytes=4, created_at=now,
                    expires_at=now + offset,
                )
            )  # fmt: skip
            keys[0 if is_expired else 1].append(key)
    staging = server.data_dir / "seed"
    staging.mkdir()

    def store(key: str) -> None:
        path = staging / key.replace("/", "_")
        path.write_bytes(b"RIFF")
        storage.put(key, path)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(store, keys[0] + keys[1]))
    runtime.close()
    return keys


def test_a_purge_killed_mid_run_and_run_again(own_server: Server) -> None:
    # An S3 emulator stores one object per HTTP round trip: fewer rows keep the test short.
    count = 1400 if own_server.scaleout else 7000
    expired, live = seed_wavs(own_server, count=count, live_every=7)
    storage = own_server.storage()
    command = [sys.executable, "-m", "wavforge", "purge"]
    purge = subprocess.Popen(command, env=own_server.env, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while storage.size(expired[0]) is not None:  # the purge goes in id order: its first
            assert time.monotonic() < deadline and purge.poll() is None, "purge never started"
            time.sleep(0.002)
        purge.send_signal(signal.SIGKILL)
    finally:
        purge.wait(timeout=10)
    stored = set(storage.keys("wav/"))
    left = len(stored & set(expired))
    assert 0 < left < len(expired), f"not killed mid-run: {left} expired files left"
    assert set(live) <= stored

    rerun = subprocess.run(command, env=own_server.env, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert set(storage.keys("wav/")) == set(live)
    with own_server.database() as db, db.read() as session:
        kept = session.query(WavTask).filter(WavTask.wav_key.is_not(None)).count()
        records = session.query(WavTask).count()
    assert kept == len(live) and records == len(expired) + len(live)
