"""The scale-out mode under a worker crash: 2 API processes and 2 workers on PostgreSQL,
Redis and S3 (moto), 100 conversions, one worker's whole process group SIGKILLed mid-batch
and a third worker started. Nothing may be lost, charged twice, or left in the bucket.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from wavforge.core.peaks import peaks_key, source_peaks_key
from wavforge.db.models import LedgerEntry, PeaksJob, Track, WavTask
from wavforge.storage.s3 import S3Storage

from audiogen import make_mp3
from conftest import Server, wait_until
from support.deployments import Deployment, Modes, S3Emulator
from support.imports import import_tracks
from support.processes import free_port
from support.receiver import Receiver

TASKS = 100
COST = 2
CREDITS = 1000


@pytest.fixture
def deployment(s3_emulator: S3Emulator) -> Iterator[Deployment]:
    made = Modes("scaleout", s3_emulator)
    yield made.deployment()
    made.close()


def node(tmp_path: Path, name: str, deployment: Deployment) -> Server:
    """One machine's view: its own data dir, the shared database, queue and bucket."""
    data = tmp_path / name
    data.mkdir()
    return Server(
        data_dir=data,
        port=free_port(),
        deployment=deployment,
        extra_env={"WAVFORGE_WAV_COST": str(COST), "WAVFORGE_WORKER_THREADS": "2"},
        start_args=["--no-worker"],
    )


def start_worker(machine: Server) -> subprocess.Popen[bytes]:
    with (machine.data_dir.parent / f"{machine.data_dir.name}.log").open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "wavforge", "worker"],
            env=machine.env,
            stdout=log,
            stderr=log,
            start_new_session=True,  # its own process group: SIGKILL takes its converters too
        )


def counts(machine: Server) -> dict[str, int]:
    with machine.database() as db, db.read() as session:
        rows = session.execute(select(WavTask.status, func.count()).group_by(WavTask.status))
        return {status: int(count) for status, count in rows}


def running_owned_by(machine: Server, pid: int) -> int:
    with machine.database() as db, db.read() as session:
        owners = session.scalars(select(WavTask.lease_owner).where(WavTask.status == "RUNNING"))
        return sum(1 for owner in owners if owner and owner.split(":")[1] == str(pid))


def kill_mid_conversion(machine: Server, worker: subprocess.Popen[bytes]) -> int:
    """Freeze the worker while it holds a conversion, then SIGKILL its whole process group.

    Returns how many conversions it was running: they must be recovered by someone else.
    """
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        os.killpg(worker.pid, signal.SIGSTOP)
        held = running_owned_by(machine, worker.pid)
        if held:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=10)
            return held
        os.killpg(worker.pid, signal.SIGCONT)
        time.sleep(0.02)
    raise AssertionError("the worker never held a conversion")


def test_a_killed_worker_costs_nothing(
    deployment: Deployment, tmp_path: Path, receiver: Receiver
) -> None:
    apis = [node(tmp_path, f"api{n}", deployment).start() for n in (1, 2)]
    machines = [node(tmp_path, f"worker{n}", deployment) for n in (1, 2, 3)]
    workers = [start_worker(machine) for machine in machines[:2]]
    try:
        key = apis[0].create_key(credits=CREDITS)["key"]
        source = make_mp3(tmp_path / "song.mp3", 20.0)
        clients = [api.client(key) for api in apis]
        track_ids = import_tracks(clients[0], source, TASKS)

        def submit(number: int) -> str:
            body = {"audioId": track_ids[number], "callBackUrl": receiver.url}
            response = clients[number % 2].post("/api/v1/wav/generate", json=body)
            assert response.status_code == 200, response.text
            return str(response.json()["data"]["taskId"])

        with ThreadPoolExecutor(8) as pool:
            task_ids = list(pool.map(submit, range(TASKS)))

        wait_until(lambda: counts(apis[0]).get("SUCCESS", 0) >= TASKS // 4, timeout=120)
        held = kill_mid_conversion(machines[0], workers[0])
        assert 0 < counts(apis[0]).get("SUCCESS", 0) < TASKS, "the kill was not mid-batch"
        workers.append(start_worker(machines[2]))

        wait_until(lambda: counts(apis[0]) == {"SUCCESS": TASKS}, timeout=180)
        records = [
            clients[1].get("/api/v1/wav/record-info", params={"taskId": task_id}).json()["data"]
            for task_id in task_ids
        ]
        assert [r["successFlag"] for r in records] == ["SUCCESS"] * TASKS
        recovered = check_rows(apis[0], task_ids)
        assert recovered >= held  # what the dead worker held was converted again
        check_credits(clients[0], task_ids)
        check_callbacks(receiver, task_ids)
        check_bucket(apis[0], deployment)
        for client in clients:
            client.close()
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
                worker.wait(timeout=60)
        for api in apis:
            api.stop()


def check_rows(machine: Server, task_ids: list[str]) -> int:
    """Every task converted once and finished; returns how many needed a second attempt."""
    with machine.database() as db, db.read() as session:
        tasks = session.scalars(select(WavTask).where(WavTask.id.in_(task_ids))).all()
    assert len(tasks) == len(task_ids)
    assert all(t.status == "SUCCESS" and t.wav_key and t.lease_owner is None for t in tasks)
    return sum(1 for t in tasks if t.attempts > 1)


def check_credits(api: httpx.Client, task_ids: list[str]) -> None:
    """Charged exactly once per task, never refunded."""
    assert api.get("/api/v1/generate/credit").json()["data"] == CREDITS - TASKS * COST
    entries = api.get("/api/v1/account/ledger", params={"limit": 1000}).json()["data"]["entries"]
    charges = [e for e in entries if e["reason"] == "charge"]
    assert sorted(e["taskId"] for e in charges) == sorted(task_ids)
    assert sum(e["amount"] for e in charges) == -TASKS * COST
    assert not [e for e in entries if e["reason"] == "refund"]


def check_callbacks(receiver: Receiver, task_ids: list[str]) -> None:
    """At least once per task; a duplicate carries the same webhook-id (receivers dedupe)."""
    wait_until(lambda: {c["body"]["data"]["task_id"] for c in receiver.calls} >= set(task_ids))
    ids: dict[str, set[str]] = defaultdict(set)
    for call in receiver.calls:
        ids[call["body"]["data"]["task_id"]].add(call["headers"]["webhook-id"])
    assert set(ids) == set(task_ids)
    assert all(len(webhook_ids) == 1 for webhook_ids in ids.values())
    assert len({next(iter(v)) for v in ids.values()}) == len(task_ids)


def peaks_jobs(machine: Server) -> dict[str, int]:
    with machine.database() as db, db.read() as session:
        rows = session.execute(select(PeaksJob.status, func.count()).group_by(PeaksJob.status))
        return {status: int(count) for status, count in rows}


def check_bucket(machine: Server, deployment: Deployment) -> None:
    """The bucket holds exactly the sources of the tracks and the WAVs of the tasks, each
    with its peaks (the sources' are measured after the conversions, which go first)."""
    wait_until(lambda: peaks_jobs(machine) == {"DONE": TASKS}, timeout=120)
    with machine.database() as db, db.read() as session:
        sources = set(session.scalars(select(Track.source_key)))
        wavs = set(session.scalars(select(WavTask.wav_key).where(WavTask.wav_key.is_not(None))))
        expected = sources | {source_peaks_key(source) for source in sources}
        expected |= wavs | {peaks_key(wav) for wav in wavs}
        ledger_rows = session.scalar(select(func.count()).select_from(LedgerEntry))
    assert ledger_rows == 1 + TASKS  # the opening grant and one charge per task
    storage = machine.storage()
    assert isinstance(storage, S3Storage)
    assert set(storage.keys()) == expected
    assert storage.unfinished_uploads() == []
