"""Graceful shutdown (SIGTERM): running conversions finish within the grace period, or are
handed back to the queue when it runs out, and the next worker converts them.

To make "a conversion is running" last as long as the test needs, the server's converter
children are stopped with SIGSTOP (the worker keeps renewing its lease meanwhile).
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx

from test_task_lifecycle import generate, task_row, wait_until_running

from audiogen import make_mp3
from conftest import Server, import_file, wait_for_wav, wait_until
from support.processes import converters, signal_all
from support.receiver import Receiver

# uvicorn ends by re-raising the signal it stopped for; systemd counts that as a clean stop.
CLEAN_EXIT = (0, -signal.SIGTERM)


def start_a_stalled_conversion(
    server: Server, receiver: Receiver, tmp_path: Path
) -> tuple[str, str, list[int]]:
    """Submit a conversion and freeze it mid-run; returns (key, task id, frozen pids)."""
    server.start()
    key = server.create_key()["key"]
    with server.client(key) as api:
        track = import_file(api, make_mp3(tmp_path / "song.mp3", 30.0))
        assert server.process is not None
        children = converters(server.process.pid)
        signal_all(children, signal.SIGSTOP)  # before the job: it cannot finish early
        task_id = generate(api, receiver, taskId=track["taskId"]).json()["data"]["taskId"]
    wait_until_running(server, task_id)
    return key, task_id, children


def test_sigterm_lets_a_running_conversion_finish(
    own_server: Server, receiver: Receiver, tmp_path: Path
) -> None:
    own_server.extra_env["WAVFORGE_SHUTDOWN_GRACE_SECONDS"] = "60"
    _, task_id, frozen = start_a_stalled_conversion(own_server, receiver, tmp_path)
    assert own_server.process is not None
    own_server.process.send_signal(signal.SIGTERM)
    # Huey's consumer says so when it starts waiting for the running conversion.
    wait_until(lambda: "Shutting down gracefully" in own_server.log_path.read_text())
    assert own_server.process.poll() is None, "the server left without its conversion"
    signal_all(frozen, signal.SIGCONT)
    assert own_server.process.wait(timeout=30) in CLEAN_EXIT
    row = task_row(own_server, task_id)
    assert row["status"] == "SUCCESS" and row["attempts"] == 1
    assert own_server.stored(f"wav/{task_id}")


def test_sigterm_hands_back_what_outlives_the_grace_period(
    own_server: Server, receiver: Receiver, tmp_path: Path
) -> None:
    own_server.extra_env["WAVFORGE_SHUTDOWN_GRACE_SECONDS"] = "1"
    own_server.extra_env["WAVFORGE_LEASE_SECONDS"] = "30"  # recovery must not need expiry
    key, task_id, frozen = start_a_stalled_conversion(own_server, receiver, tmp_path)
    assert own_server.process is not None
    began = time.monotonic()
    own_server.process.send_signal(signal.SIGTERM)
    assert own_server.process.wait(timeout=20) in CLEAN_EXIT
    assert time.monotonic() - began < 15
    signal_all(frozen, signal.SIGKILL)
    row = task_row(own_server, task_id)
    assert row["status"] == "PENDING" and row["attempts"] == 0 and row["lease_owner"] is None

    own_server.start()  # another worker picks it up at once, not after a lease expiry
    with own_server.client(key) as api:
        record = wait_for_wav(api, task_id, timeout=20)
    assert record["successFlag"] == "SUCCESS"
    assert task_row(own_server, task_id)["attempts"] == 1
    (call,) = receiver.wait_for(1)
    assert call["body"]["data"]["task_id"] == task_id
    assert httpx.get(record["response"]["audioWavUrl"]).status_code == 200
