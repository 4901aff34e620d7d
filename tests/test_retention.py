"""Retention (CONTRACT §7): files expire on time, records stay, links answer 410, and a purge
killed at any point and run again leaves no expired file and deletes no live one."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import httpx

from wavforge.config import Settings
from wavforge.core import accounts, clock
from wavforge.db.models import MusicTask, Track, WavTask
from wavforge.runtime import build_runtime

from conftest import Receiver, Server, import_file, make_server, wait_for_wav, wait_until

GENERATE = "/api/v1/wav/generate"


def test_a_wav_expires_its_record_stays_and_the_track_converts_again(
    tmp_path: Path, mp3: Path, receiver: Receiver
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
            stored = server.data_dir / "files" / "wav" / f"{task_id}.wav"
            assert httpx.get(link).status_code == 200 and stored.exists()
            assert api.post(GENERATE, json=body).status_code == 409  # still live

            wait_until(lambda: not stored.exists(), timeout=15)  # the periodic purge ran
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


def seed_wavs(data_dir: Path, count: int, live_every: int) -> tuple[list[Path], list[Path]]:
    """Rows and files of succeeded conversions: every ``live_every``-th one is still live,
    the rest expired an hour ago. Returns (expired files, live files)."""
    runtime = build_runtime(Settings(data_dir=data_dir))
    db, files = runtime.context.db, data_dir / "files"
    account_id = accounts.create_account(db, "seed").account_id
    now = clock.now()
    paths: tuple[list[Path], list[Path]] = ([], [])
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
            path = files / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"RIFF")
            paths[0 if is_expired else 1].append(path)
    runtime.close()
    return paths


def test_a_purge_killed_mid_run_and_run_again(own_server: Server) -> None:
    expired, live = seed_wavs(own_server.data_dir, count=7000, live_every=7)
    command = [sys.executable, "-m", "wavforge", "purge"]
    purge = subprocess.Popen(command, env=own_server.env, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while expired[0].exists():  # the purge goes in id order: this one is its first
            assert time.monotonic() < deadline and purge.poll() is None, "purge never started"
            time.sleep(0.002)
        purge.send_signal(signal.SIGKILL)
    finally:
        purge.wait(timeout=10)
    left = sum(path.exists() for path in expired)
    assert 0 < left < len(expired), f"not killed mid-run: {left} expired files left"
    assert all(path.exists() for path in live)

    rerun = subprocess.run(command, env=own_server.env, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert not any(path.exists() for path in expired)
    assert all(path.exists() for path in live)
    runtime = build_runtime(Settings(data_dir=own_server.data_dir))
    with runtime.context.db.read() as session:
        kept = session.query(WavTask).filter(WavTask.wav_key.is_not(None)).count()
        records = session.query(WavTask).count()
    runtime.close()
    assert kept == len(live) and records == len(expired) + len(live)
