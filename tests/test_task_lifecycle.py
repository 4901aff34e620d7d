"""The task state machine seen from outside: one live record per track and format, clean
failures, and recovery after the serving process is killed mid-conversion."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from wavforge.core.peaks import peaks_key
from wavforge.db.models import Delivery, WavTask

from audiogen import make_mp3
from conftest import Server, break_stored_source, import_file, wait_for_wav, wait_until
from support.receiver import Receiver


def generate(api: httpx.Client, receiver: Receiver, **fields: str | int) -> httpx.Response:
    return api.post("/api/v1/wav/generate", json={**fields, "callBackUrl": receiver.url})


def test_racing_submissions_make_exactly_one_task_per_format(
    server: Server, receiver: Receiver, mp3: Path
) -> None:
    """Twelve racing requests, half for the default format and half for 24 bits: one task of
    each format wins, and every other request is told the winner of its own format."""
    key = server.create_key(credits=50)["key"]
    with server.client(key) as api:
        track = import_file(api, mp3)
    formats: list[dict[str, int]] = [{}, {"bitDepth": 24}]

    def submit(attempt: int) -> tuple[int, httpx.Response]:
        asked = attempt % 2
        with server.client(key) as client:
            audio = track["tracks"][0]["id"]
            return asked, generate(client, receiver, audioId=audio, **formats[asked])

    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(submit, range(12)))
    winners = []
    for asked in range(len(formats)):
        mine = [answer for of, answer in answers if of == asked]
        assert sorted(a.status_code for a in mine) == [200] + [409] * 5
        (winner,) = [a.json()["data"]["taskId"] for a in mine if a.status_code == 200]
        assert {a.json()["data"]["taskId"] for a in mine if a.status_code == 409} == {winner}
        winners.append(winner)
    with server.client(key) as api:
        assert api.get("/api/v1/generate/credit").json()["data"] == 48
        assert wait_for_wav(api, winners[0])["successFlag"] == "SUCCESS"
        # still 409 once it has succeeded: the WAV exists and has not expired
        again = generate(api, receiver, taskId=track["taskId"])
        assert again.status_code == 409 and again.json()["data"]["taskId"] == winners[0]


def test_a_failed_conversion_is_clean_refunded_and_retryable(
    server: Server, receiver: Receiver, tmp_path: Path
) -> None:
    key = server.create_key(credits=5)["key"]
    with server.client(key) as api:
        track = import_file(api, make_mp3(tmp_path / "doomed.mp3", 1.0))
        track_id = track["tracks"][0]["id"]
        break_stored_source(server, track_id, tmp_path)
        task_id = generate(api, receiver, audioId=track_id).json()["data"]["taskId"]

        record = wait_for_wav(api, task_id)
        assert record["successFlag"] == "GENERATE_WAV_FAILED"
        assert record["errorCode"] in (400, 501)
        assert record["errorMessage"].startswith(("unsupported source", "conversion failed"))
        assert record["response"]["audioWavUrl"] is None
        assert api.get("/api/v1/generate/credit").json()["data"] == 5  # refunded
        book = api.get("/api/v1/account/ledger").json()["data"]
        moves = [(e["reason"], e["amount"]) for e in book["entries"] if e["taskId"] == task_id]
        assert sorted(moves) == [("charge", -1), ("refund", 1)]

        (call,) = receiver.wait_for(1)
        assert call["body"]["code"] == record["errorCode"]
        assert call["body"]["msg"] == record["errorMessage"]
        assert call["body"]["data"] == {
            "task_id": task_id,
            "audioWavUrl": None,
            "audio_wav_url": None,
            "taskId": task_id,
            "audioId": track_id,
            "musicId": track_id,
            "response": {"audioWavUrl": None},
        }

        assert server.stored(f"wav/{task_id}") == []
        assert not list((server.data_dir / "tmp").glob(f"{task_id}*"))
        # after a failure the track may be converted again
        assert generate(api, receiver, audioId=track_id).status_code == 200


def test_a_missing_source_fails_with_a_server_error(
    server: Server, receiver: Receiver, tmp_path: Path
) -> None:
    with server.client(server.create_key()["key"]) as api:
        track = import_file(api, make_mp3(tmp_path / "gone.mp3", 1.0))
        track_id = track["tracks"][0]["id"]
        storage = server.storage()
        for key in storage.keys(f"sources/{track_id}."):
            storage.delete(key)
        task_id = generate(api, receiver, audioId=track_id).json()["data"]["taskId"]
        record = wait_for_wav(api, task_id)
    assert record["successFlag"] == "GENERATE_WAV_FAILED"
    assert record["errorCode"] == 500
    assert record["errorMessage"] == "server error during conversion"


def task_row(server: Server, task_id: str) -> dict[str, Any]:
    with server.database() as db, db.read() as session:
        row = session.execute(select(WavTask.__table__).where(WavTask.id == task_id)).one()
    return dict(row._mapping)


def delivery_states(server: Server, task_id: str) -> list[str]:
    with server.database() as db, db.read() as session:
        query = select(Delivery.status).where(Delivery.wav_task_id == task_id)
        return [str(status) for status in session.scalars(query)]


def deliveries(server: Server, task_id: str) -> int:
    with server.database() as db, db.read() as session:
        query = select(func.count()).where(Delivery.wav_task_id == task_id)
        return int(session.scalar(query) or 0)


def wait_until_running(server: Server, task_id: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if task_row(server, task_id)["status"] == "RUNNING":
            return
        time.sleep(0.005)
    raise AssertionError("the conversion never started")


def test_sigkill_mid_conversion_finishes_exactly_once(
    own_server: Server, receiver: Receiver, tmp_path: Path
) -> None:
    source = make_mp3(tmp_path / "long.mp3", 240.0, bitrate=128_000)
    own_server.start()
    key = own_server.create_key()["key"]
    with own_server.client(key) as api:
        track = import_file(api, source)
        task_id = generate(api, receiver, taskId=track["taskId"]).json()["data"]["taskId"]
    wait_until_running(own_server, task_id)
    own_server.kill()
    assert task_row(own_server, task_id)["status"] == "RUNNING"

    own_server.start()  # same data dir; the lease (3 s here) must run out before the sweep
    with own_server.client(key) as api:
        record = wait_for_wav(api, task_id)
    assert record["successFlag"] == "SUCCESS"
    (call,) = receiver.wait_for(1)
    # Once its only delivery is DELIVERED (and the task SUCCESS), nothing is left to send.
    wait_until(lambda: delivery_states(own_server, task_id) == ["DELIVERED"])
    assert len(receiver.calls) == 1 and call["body"]["data"]["task_id"] == task_id
    row = task_row(own_server, task_id)
    assert row["attempts"] == 2 and deliveries(own_server, task_id) == 1
    # One WAV and its peaks: the run killed mid-conversion left nothing of its own.
    assert set(own_server.stored("wav/")) == {row["wav_key"], peaks_key(row["wav_key"])}
    assert not list((own_server.data_dir / "tmp").iterdir())
