"""Process shapes: the API without a worker plus a worker alone; several API processes
beside one worker process; the OpenAPI docs."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path

import httpx

from conftest import MakeServer, Server, import_file, wait_for_wav, wait_until
from support.processes import converters, descendants
from support.receiver import Receiver


def test_api_only_server_and_a_separate_worker(
    make_server: MakeServer, tmp_path: Path, receiver: Receiver, mp3: Path
) -> None:
    api_server = make_server(tmp_path)
    api_server.extra_env["WAVFORGE_SWEEP_SECONDS"] = "30"
    api_server.start_args = ["--no-worker"]
    api_server.start()
    worker: subprocess.Popen[bytes] | None = None
    try:
        with api_server.client(api_server.create_key()["key"]) as api:
            imported = import_file(api, mp3)
            body = {"taskId": imported["taskId"], "callBackUrl": receiver.url}
            task_id = api.post("/api/v1/wav/generate", json=body).json()["data"]["taskId"]
            record = api.get("/api/v1/wav/record-info", params={"taskId": task_id}).json()
            assert record["data"]["successFlag"] == "PENDING"  # nobody converts yet

            worker = subprocess.Popen(
                [sys.executable, "-m", "wavforge", "worker"],
                env=api_server.env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            assert wait_for_wav(api, task_id)["successFlag"] == "SUCCESS"
            assert receiver.wait_for(1)[0]["body"]["data"]["task_id"] == task_id
    finally:
        if worker is not None:
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(timeout=30) == 0
        api_server.stop()


def test_openapi_docs_are_served(server: Server) -> None:
    assert httpx.get(f"{server.url}/docs").status_code == 200
    paths = httpx.get(f"{server.url}/openapi.json").json()["paths"]
    assert {
        "/api/v1/music/import", "/api/v1/wav/generate", "/api/v1/wav/record-info",
        "/api/v1/generate/record-info", "/api/v1/generate/credit",
    } <= set(paths)  # fmt: skip


def _children(pid: int) -> list[int]:
    return [child for child in descendants(pid) if _parent(child) == pid]


def _parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except OSError:
        return -1


def _listening_inodes(port: int) -> set[str]:
    """The inodes of the sockets listening on ``port``."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1].endswith(f":{port:04X}") and fields[3] == "0A":  # 0A: LISTEN
            found.add(fields[9])
    return found


def _listening_socket(pid: int, inodes: set[str]) -> str | None:
    """Which of ``inodes`` the process holds, if any."""
    with suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    return target[8:-1]
    return None


def _api_processes(pid: int, port: int) -> dict[int, str]:
    """The children of ``serve`` that listen on ``port``, with their sockets' inodes."""
    inodes = _listening_inodes(port)
    held = {child: _listening_socket(child, inodes) for child in _children(pid)}
    return {child: inode for child, inode in held.items() if inode is not None}


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def _start_two_api_processes(server: Server) -> tuple[int, dict[int, str]]:
    """Start ``server`` with two API processes: its pid, and its API processes with their
    listening sockets (once both listen)."""
    server.extra_env["WAVFORGE_API_PROCESSES"] = "2"
    server.start()
    assert server.process is not None
    pid = server.process.pid
    wait_until(lambda: len(_api_processes(pid, server.port)) == 2, timeout=30)
    return pid, _api_processes(pid, server.port)


def test_several_api_processes_share_the_port_beside_one_worker_process(
    own_server: Server, receiver: Receiver, mp3: Path
) -> None:
    server = own_server
    pid, listening = _start_two_api_processes(server)
    children = _children(pid)
    api = list(listening)
    # Each API process listens on a socket of its own (SO_REUSEPORT), so the kernel
    # balances connections between them; beside them the worker, and multiprocessing's
    # resource tracker.
    assert len(set(listening.values())) == 2
    assert len(children) >= 3

    key = server.create_key()["key"]
    before = {pid: _cpu_ticks(pid) for pid in api}

    def poll(_: int) -> set[int]:
        with server.client(key) as client:  # a connection each, spread over the processes
            return {client.get("/api/v1/generate/credit").status_code for _ in range(100)}

    # Enough requests that each process spends well over the 10 ms a clock tick counts.
    with ThreadPoolExecutor(16) as pool:
        assert set().union(*pool.map(poll, range(16))) == {200}
    assert all(_cpu_ticks(child) > before[child] for child in api)

    with server.client(key) as client:
        imported = import_file(client, mp3)
        body = {"taskId": imported["taskId"], "callBackUrl": receiver.url}
        task_id = client.post("/api/v1/wav/generate", json=body).json()["data"]["taskId"]
        assert wait_for_wav(client, task_id)["successFlag"] == "SUCCESS"
    assert receiver.wait_for(1)[0]["body"]["data"]["task_id"] == task_id

    everything = descendants(pid)
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=30) == 0
    # multiprocessing's resource tracker leaves once the last process using it has gone.
    wait_until(lambda: not [child for child in everything if _alive(child)], timeout=10)
    log = (server.data_dir.parent / f"serve-{server.port}.log").read_text()
    # Redis shares the rate-limit counters; without it each process counts alone, and says so.
    assert ("count the per-key rate limit each on their own" in log) != server.scaleout


def test_a_worker_process_that_dies_is_replaced(
    own_server: Server, receiver: Receiver, mp3: Path
) -> None:
    server = own_server
    pid, listening = _start_two_api_processes(server)
    workers = [
        child
        for child in _children(pid)
        if child not in listening and b"resource_tracker" not in _cmdline(child)
    ]
    assert len(workers) == 1
    os.kill(workers[0], signal.SIGKILL)
    with server.client(server.create_key()["key"]) as client:
        imported = import_file(client, mp3)
        body = {"taskId": imported["taskId"], "callBackUrl": receiver.url}
        response = client.post("/api/v1/wav/generate", json=body)
        assert wait_for_wav(client, response.json()["data"]["taskId"])["successFlag"] == "SUCCESS"
    server.stop()
    assert server.process.returncode == 0


def test_an_api_process_that_dies_is_replaced(own_server: Server) -> None:
    server = own_server
    pid, listening = _start_two_api_processes(server)
    victim = next(iter(listening))
    os.kill(victim, signal.SIGKILL)
    wait_until(
        lambda: (
            len(_api_processes(pid, server.port)) == 2
            and victim not in _api_processes(pid, server.port)
        ),
        timeout=30,
    )
    key = server.create_key()["key"]

    def credit(_: int) -> int:
        with server.client(key) as client:  # a connection each: both sockets get some
            return client.get("/api/v1/generate/credit").status_code

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(credit, range(32))) == {200}
    server.stop()
    assert server.process is not None and server.process.returncode == 0


def test_several_api_processes_refuse_a_port_in_use(own_server: Server) -> None:
    """SO_REUSEPORT must not let the API processes join whatever holds the port."""
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        taken.bind(("127.0.0.1", own_server.port))
        taken.listen()
        done = subprocess.run(
            [sys.executable, "-m", "wavforge", "serve", "--processes", "2"],
            env=own_server.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1
    assert f"cannot listen on 127.0.0.1:{own_server.port}" in done.stderr
    assert "in use" in done.stderr


def _alive(pid: int) -> bool:
    """Running, not a zombie left for an init that may be slow to reap it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def test_conversion_limits_left_empty_mean_none(
    own_server: Server, receiver: Receiver, mp3: Path
) -> None:
    """``WAVFORGE_CONVERT_MEMORY_BYTES=`` and ``..._CPU_SECONDS=`` (as an environment file
    writes them) lift the limits, as documented, instead of failing the start."""
    server = own_server
    server.extra_env |= {"WAVFORGE_CONVERT_MEMORY_BYTES": "", "WAVFORGE_CONVERT_CPU_SECONDS": ""}
    server.start()
    with server.client(server.create_key()["key"]) as client:
        imported = import_file(client, mp3)
        body = {"taskId": imported["taskId"], "callBackUrl": receiver.url}
        response = client.post("/api/v1/wav/generate", json=body)
        assert wait_for_wav(client, response.json()["data"]["taskId"])["successFlag"] == "SUCCESS"
    assert server.process is not None
    children = converters(server.process.pid)
    assert children  # the conversion's child, kept for the next task
    for child in children:
        limits = Path(f"/proc/{child}/limits").read_text()
        assert re.search(r"Max address space\s+unlimited", limits), limits
        assert re.search(r"Max cpu time\s+unlimited", limits), limits
