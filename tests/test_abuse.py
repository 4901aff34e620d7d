"""What one ordinary key can send to break a request: each answers its 4xx in the envelope,
and a real server error is logged once. On loopback, against a real server, both modes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from wavforge.db.models import WavTask

from conftest import (
    MakeServer,
    Server,
    assert_envelope,
    import_file,
    wait_for_wav,
    wait_until,
    wavforge,
)
from hostile import ape_claiming_frames
from support.imports import import_tracks
from support.processes import free_port, stop_or_kill
from support.receiver import Receiver

# Most of these are refused or held in the HTTP layer, the same in both modes; the ones that
# reach the queue, storage or the database keep both runs.
embedded_only = pytest.mark.embedded_only

GENERATE = "/api/v1/wav/generate"
IMPORT = "/api/v1/music/import"


def server_log(server: Server) -> list[dict[str, Any]]:
    path = server.data_dir.parent / f"serve-{server.port}.log"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def tracebacks(server: Server) -> int:
    return sum("Traceback" in str(entry.get("exc_info", "")) for entry in server_log(server))


@embedded_only
def test_a_download_link_with_a_non_ascii_digit_is_403(api: httpx.Client) -> None:
    """``"²".isdigit()`` is true, yet ``int("²")`` fails: it must not reach it."""
    link = "/files/wav/abc/x.wav?expires=%C2%B2&signature=x"
    assert_envelope(api.get(link), 403)


@embedded_only
def test_half_a_surrogate_pair_in_an_id_is_400(api: httpx.Client) -> None:
    body = b'{"taskId": "\\ud800", "callBackUrl": "https://example.com/cb"}'
    response = api.post(GENERATE, content=body, headers={"content-type": "application/json"})
    assert "Unicode" in assert_envelope(response, 400)["msg"]
    unified = api.post(
        "/api/generate/submit",
        content=b'{"model": "convert-to-wav", "input": {"audio_id": "\\udfff"}}',
        headers={"content-type": "application/json"},
    )
    assert unified.status_code == 400 and unified.json()["code"] == 400


@embedded_only
@pytest.mark.parametrize("depth", [500, 900, 960, 990, 1000, 1100, 5000, 100_000])
def test_deeply_nested_json_with_an_idempotency_key_is_refused_or_run(
    api: httpx.Client, depth: int
) -> None:
    """Deep enough to break a recursive walk somewhere: never a 500."""
    nested = "[" * depth + "]" * depth
    body = f'{{"audioId": "x", "callBackUrl": "https://example.com/cb", "deep": {nested}}}'
    response = api.post(
        GENERATE,
        content=body.encode(),
        headers={"content-type": "application/json", "Idempotency-Key": f"deep-{depth}"},
    )
    assert response.status_code in (400, 404), response.text
    assert response.json()["code"] == response.status_code


# Locations that are no URL: a bad port, an A-label that is not Punycode (httpx's IDNA
# decoding raises UnicodeError reading it, even when it does not follow the redirect).
BAD_LOCATIONS = ["http://[::1", "http://xn--/"]


@pytest.fixture(params=BAD_LOCATIONS)
def redirector(request: pytest.FixtureRequest) -> Iterator[str]:
    """An import URL that redirects to something that is not a URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(302)
            self.send_header("Location", request.param)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return None

    http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{http.server_address[1]}/song.mp3"
    http.shutdown()
    http.server_close()


@embedded_only
def test_an_import_redirected_to_a_malformed_url_is_400(api: httpx.Client, redirector: str) -> None:
    response = api.post(IMPORT, json={"urls": [redirector]})
    assert "import URL" in assert_envelope(response, 400)["msg"]


@embedded_only
def test_a_chunked_body_over_the_limit_is_413(api: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"audioId": "'
        for _ in range(20):
            yield b"a" * 100_000
        yield b'"}'

    response = api.post(GENERATE, content=chunks(), headers={"content-type": "application/json"})
    assert_envelope(response, 413)


@embedded_only
def test_a_json_import_body_is_held_to_the_json_limit(api: httpx.Client) -> None:
    """Uploads may be large; a list of URLs may not (it is parsed in one piece)."""
    urls = [f"https://example.com/{i:07d}.mp3" for i in range(50_000)]  # about 1.6 MB
    response = api.post(IMPORT, json={"urls": urls})
    assert_envelope(response, 413)


@embedded_only
def test_none_of_these_leaves_a_traceback(
    server: Server, api: httpx.Client, redirector: str
) -> None:
    before = tracebacks(server)
    api.get("/files/wav/abc/x.wav?expires=%C2%B2&signature=x")
    api.post(
        GENERATE,
        content=b'{"taskId": "\\ud800", "callBackUrl": "https://example.com/cb"}',
        headers={"content-type": "application/json"},
    )
    api.post(IMPORT, json={"urls": [redirector]})
    assert tracebacks(server) == before


@embedded_only
def test_a_server_error_is_logged_once(own_server: Server, mp3: Path) -> None:
    own_server.start()
    own_server.break_storage()
    with own_server.client(own_server.create_key()["key"]) as api, mp3.open("rb") as handle:
        response = api.post(IMPORT, files={"file": ("song.mp3", handle)})
    assert_envelope(response, 500)
    request_id = response.headers["x-request-id"]
    errors = [e for e in server_log(own_server) if e["level"] == "ERROR"]
    mine = [e for e in errors if e.get("request_id") == request_id]
    assert len(mine) == 1 and "Traceback" in mine[0]["exc_info"]
    assert [e for e in errors if e["logger"] == "uvicorn.error"] == []


# Slow peers ----------------------------------------------------------------------------------


class Trickler:
    """A peer on loopback that answers the start of an HTTP response, then one byte every
    ``every`` seconds for as long as the other side stays; counts connections still open."""

    def __init__(self, head: bytes, every: float = 0.5) -> None:
        self.head = head
        self.every = every
        self.open = 0
        self.accepted = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)  # so that the accepting thread sees the stop
        self._stopping = threading.Event()
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}/slow.mp3"

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                peer, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            serving = threading.Thread(target=self._serve, args=(peer,), daemon=True)
            self._threads.append(serving)
            serving.start()

    def _serve(self, peer: socket.socket) -> None:
        with self._lock:
            self.open += 1
            self.accepted += 1
        try:
            peer.settimeout(2)  # no thread waits for ever on a peer that says nothing
            peer.recv(65536)  # the request
            peer.sendall(self.head)
            while not self._stopping.wait(self.every):
                peer.sendall(b"x")
        except OSError:
            pass  # the other side closed: what the tests wait for
        finally:
            peer.close()
            with self._lock:
                self.open -= 1

    def close(self) -> None:
        """Stop, and wait for every thread: the engine splits long MP3s only in a process
        with no other threads, which later tests in this process rely on."""
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self._listener.close()


@pytest.fixture
def trickling_file() -> Iterator[Trickler]:
    """Promises a gigabyte, sends a byte every half second."""
    peer = Trickler(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n")
    yield peer
    peer.close()


def _import_and_leave(server: Server, key: str, url: str) -> None:
    """A client that asks for a URL import and gives up after 3 s."""
    with suppress(httpx.HTTPError), server.client(key) as api:
        api.post(IMPORT, json={"urls": [url]}, timeout=3)


@embedded_only
def test_trickling_imports_stall_nobody_and_end_when_their_clients_leave(
    server: Server, mp3: Path, receiver: Receiver, trickling_file: Trickler
) -> None:
    keys = [server.create_key()["key"] for _ in range(5)]
    with server.client(keys[0]) as api:
        track = import_file(api, mp3)["tracks"][0]["id"]
        task_id = api.post(GENERATE, json={"audioId": track, "callBackUrl": receiver.url})
        link = wait_for_wav(api, task_id.json()["data"]["taskId"])["response"]["audioWavUrl"]

        clients = [
            threading.Thread(
                target=_import_and_leave, args=(server, keys[i % 5], trickling_file.url)
            )
            for i in range(50)
        ]
        for client in clients:
            client.start()
        wait_until(lambda: trickling_file.open >= 50, timeout=10)

        for name, request in (
            ("download", lambda: httpx.get(link, timeout=2)),
            ("console fragment", lambda: api.get("/console/partials/overview", timeout=2)),
            ("upload import", lambda: _upload(api, mp3)),
        ):
            started = time.monotonic()
            assert request().status_code == 200, name
            assert time.monotonic() - started < 2, name
        for client in clients:
            client.join()
    # The clients left after 3 s: every fetch stops within a poll and a byte of that.
    wait_until(lambda: trickling_file.open == 0, timeout=5)
    assert trickling_file.accepted == 50


def _upload(api: httpx.Client, mp3: Path) -> httpx.Response:
    with mp3.open("rb") as handle:
        return api.post(IMPORT, files={"file": ("song.mp3", handle)}, timeout=2)


@embedded_only
def test_an_import_past_its_deadline_is_400_and_closed(
    make_server: MakeServer, tmp_path: Path, trickling_file: Trickler
) -> None:
    server = make_server(tmp_path, WAVFORGE_IMPORT_TIMEOUT_SECONDS="2").start()
    try:
        with server.client(server.create_key()["key"]) as api:
            started = time.monotonic()
            response = api.post(IMPORT, json={"urls": [trickling_file.url]})
            assert "longer than 2 s" in assert_envelope(response, 400)["msg"]
            assert time.monotonic() - started < 5
        wait_until(lambda: trickling_file.open == 0, timeout=2)
        assert not list((server.data_dir / "tmp").glob("import-*"))  # nothing staged is left
    finally:
        server.stop()


@embedded_only
def test_callbacks_to_a_trickling_receiver_hold_up_no_conversion(
    make_server: MakeServer, tmp_path: Path, mp3: Path
) -> None:
    """Each callback attempt ends at its deadline and is retried on schedule, not early; and
    while they hang, another account's conversion runs at once."""
    receiver = Trickler(b"HTTP/1.1 200 OK\r\nX", every=0.5)  # a header, a byte at a time
    server = make_server(
        tmp_path, WAVFORGE_CALLBACK_TIMEOUT="3", WAVFORGE_CALLBACK_RETRY_SUNO="1"
    ).start()
    try:
        with server.client(server.create_key()["key"]) as slow_api:
            tracks = [import_file(slow_api, mp3)["tracks"][0]["id"] for _ in range(2)]
            slow = [
                slow_api.post(GENERATE, json={"audioId": t, "callBackUrl": receiver.url})
                for t in tracks
            ]
            wait_until(lambda: receiver.open == 2, timeout=15)
        with server.client(server.create_key()["key"]) as other:
            track = import_file(other, mp3)["tracks"][0]["id"]
            started = time.monotonic()
            body = {"model": "convert-to-wav", "input": {"audio_id": track}}
            task = other.post("/api/generate/submit", json=body).json()["data"]["task_id"]
            wait_until(
                lambda: (
                    other.get(f"/api/generate/status/{task}").json()["data"]["status"] == "finished"
                ),
                timeout=15,
            )
            assert time.monotonic() - started < 15
        with server.client(slow_api.headers["authorization"].split()[1]) as api:
            for answer in slow:
                task_id = answer.json()["data"]["taskId"]

                def failed(task_id: str = task_id) -> list[dict[str, Any]] | None:
                    log = api.get("/api/v1/wav/callbacks", params={"taskId": task_id})
                    gone = [d for d in log.json()["data"]["deliveries"] if d["status"] == "FAILED"]
                    return gone[0]["attempts"] if gone else None

                attempts = wait_until(failed, timeout=30)
                assert [a["error"] for a in attempts] == ["timed out after 3 s"] * 2
                assert all(2900 <= a["durationMs"] < 4500 for a in attempts)
        assert receiver.accepted == 4  # two attempts each: none sent again early by the sweep
    finally:
        server.stop()
        receiver.close()


# One account flooding the queue --------------------------------------------------------------


def test_one_account_flooding_the_queue_delays_another_by_a_conversion_at_most(
    own_server: Server, mp3: Path, receiver: Receiver
) -> None:
    """A submits 20 conversions, then B one, all queued before a worker starts: a free slot
    goes to the account with the fewest running, then to the one served longest ago, so B's
    finishes before half of A's have."""
    own_server.start_args = ["--no-worker"]
    server = own_server.start()
    with (
        server.client(server.create_key()["key"]) as flood,
        server.client(server.create_key()["key"]) as single,
    ):
        many = import_tracks(flood, mp3, 20)
        one = import_file(single, mp3)["tracks"][0]["id"]
        for track in many:
            answer = flood.post(GENERATE, json={"audioId": track, "callBackUrl": receiver.url})
            assert answer.status_code == 200, answer.text
        answer = single.post(GENERATE, json={"audioId": one, "callBackUrl": receiver.url})
        task_id = answer.json()["data"]["taskId"]

        def finished_of_flood() -> int | None:
            mine = single.get("/api/v1/wav/record-info", params={"taskId": task_id})
            if mine.json()["data"]["successFlag"] == "PENDING":
                return None
            listed = flood.get("/api/v1/account/wav-tasks", params={"limit": 50}).json()["data"]
            return 1 + sum(task["successFlag"] != "PENDING" for task in listed)

        worker = subprocess.Popen(
            [sys.executable, "-m", "wavforge", "worker"],
            env=server.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            assert wait_until(finished_of_flood, timeout=60) - 1 < 10
        finally:
            stop_or_kill(worker)


# Leftovers -----------------------------------------------------------------------------------


def test_files_dead_processes_left_staged_are_swept(own_server: Server) -> None:
    """An import or conversion killed mid-way leaves its staged file; the start of a server
    and every purge delete those nobody has written to for a long while, and only those."""
    scratch = own_server.data_dir / "tmp"
    scratch.mkdir(parents=True, exist_ok=True)
    stale = [scratch / "import-0123abcd", scratch / "deadbeef.wav.part"]
    fresh = scratch / "import-fresh"
    unrelated = scratch / "keep-me"
    long_ago = time.time() - 3 * 24 * 3600
    for path in (*stale, fresh, unrelated):
        path.write_bytes(b"x")
    for path in (*stale, unrelated):
        os.utime(path, (long_ago, long_ago))
    own_server.start()
    assert [path.exists() for path in stale] == [False, False]  # swept at start
    assert fresh.exists() and unrelated.exists()

    again = scratch / "import-killed"
    again.write_bytes(b"x")
    os.utime(again, (long_ago, long_ago))
    result = json.loads(wavforge("purge", "--json", env=own_server.env).stdout)
    assert result["stale_files_deleted"] == 1 and not again.exists() and fresh.exists()


# Costly files --------------------------------------------------------------------------------


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def test_a_crafted_file_is_probed_outside_the_api_process(
    make_server: MakeServer, tmp_path: Path
) -> None:
    """A 120 MB APE whose header claims 30 M frames takes about 1.6 GB to open. The import
    answers 400 from a child held to the conversion memory limit; the API process stays
    small and answers health checks the whole time."""
    crafted = ape_claiming_frames(tmp_path / "crafted.ape", 30_000_000)
    server = make_server(tmp_path, WAVFORGE_MAX_UPLOAD_BYTES=str(200 * 1024 * 1024)).start()
    try:
        assert server.process is not None
        slowest: list[float] = []
        done = threading.Event()

        def watch_health() -> None:
            while not done.is_set():
                started = time.monotonic()
                httpx.get(f"{server.url}/healthz", timeout=5).raise_for_status()
                slowest.append(time.monotonic() - started)
                time.sleep(0.05)

        watcher = threading.Thread(target=watch_health)
        watcher.start()
        try:
            with server.client(server.create_key()["key"]) as api, crafted.open("rb") as handle:
                answer = api.post(IMPORT, files={"file": ("crafted.ape", handle)}, timeout=120)
        finally:
            done.set()
            watcher.join()
        assert "memory limit" in assert_envelope(answer, 400)["msg"]
        assert peak_rss_mb(server.process.pid) < 400
        assert slowest and max(slowest) < 1.0
    finally:
        server.stop()


# Faults of the service's own parts -----------------------------------------------------------


def test_a_storage_fault_during_a_conversion_hands_the_task_back(
    tmp_path: Path, mp3: Path, receiver: Receiver
) -> None:
    """The WAV cannot be stored for a while (here: a file where its folder goes; on a real
    machine a full disk or an S3 outage): the task goes back to the queue, not to a failure
    with a refund, and converts once storage works again. Embedded mode, where the store is
    a folder this test can break and mend."""
    data = tmp_path / "data"
    data.mkdir()
    server = Server(data_dir=data, port=free_port(), extra_env={"WAVFORGE_MAX_ATTEMPTS": "10"})
    server.start()
    try:
        with server.client(server.create_key()["key"]) as api:
            track = import_file(api, mp3)["tracks"][0]["id"]
            blocker = data / "files" / "wav"
            blocker.write_text("not a folder")
            answer = api.post(GENERATE, json={"audioId": track, "callBackUrl": receiver.url})
            task_id = answer.json()["data"]["taskId"]
            wait_until(lambda: _attempts(server, task_id) >= 2, timeout=30)
            assert _status(api, task_id) == "PENDING"  # not failed, not refunded
            blocker.unlink()
            record = wait_for_wav(api, task_id)
            assert record["successFlag"] == "SUCCESS" and record["errorCode"] is None
            assert api.get("/api/v1/generate/credit").json()["data"] == 99  # charged once
        [call] = receiver.wait_for(1)
        assert call["body"]["code"] == 200
    finally:
        server.stop()


def _attempts(server: Server, task_id: str) -> int:
    with server.database() as db, db.read() as session:
        return int(session.scalar(select(WavTask.attempts).where(WavTask.id == task_id)) or 0)


def _status(api: httpx.Client, task_id: str) -> str:
    record = api.get("/api/v1/wav/record-info", params={"taskId": task_id}).json()["data"]
    return str(record["successFlag"])


# A database locked by another process -------------------------------------------------------

HOLD_EXCLUSIVE = """
import sqlite3, sys, time
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
connection.execute("COMMIT")
"""


def test_a_locked_database_delays_only_the_requests_that_write(
    tmp_path: Path, mp3: Path, receiver: Receiver
) -> None:
    """Another process holds SQLite's write lock for 10 s (a backup tool, a stray shell):
    health checks, status reads and a key's first use stay fast while a submission waits.
    Embedded mode: the lock is SQLite's."""
    data = tmp_path / "data"
    data.mkdir()
    server = Server(data_dir=data, port=free_port()).start()
    try:
        with server.client(server.create_key()["key"]) as api:
            tracks = import_tracks(api, mp3, 2)
            record = converted_record(api, tracks[0], receiver)
            fresh_key = server.create_key()["key"]
            holder = subprocess.Popen(
                [sys.executable, "-c", HOLD_EXCLUSIVE, str(data / "wavforge.db"), "10"],
                stdout=subprocess.PIPE,
                text=True,
            )
            assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
            waited: list[float] = []
            submitter = threading.Thread(
                target=_timed_submit, args=(api, tracks[1], receiver.url, waited)
            )
            submitter.start()
            slowest = 0.0
            deadline = time.monotonic() + 4
            with server.client(fresh_key) as newcomer:
                while time.monotonic() < deadline:
                    for request in (
                        lambda: httpx.get(f"{server.url}/healthz", timeout=5),
                        lambda: api.get("/api/v1/wav/record-info", params={"taskId": record}),
                        lambda: newcomer.get("/api/v1/generate/credit"),
                    ):
                        started = time.monotonic()
                        assert request().status_code == 200
                        slowest = max(slowest, time.monotonic() - started)
                    time.sleep(0.1)
            assert slowest < 1.0, slowest
            submitter.join(timeout=30)
            holder.wait(timeout=10)
            holder.stdout.close()
            assert waited and waited[0] >= 5  # it waited for the lock, in its own thread
    finally:
        server.stop()


def converted_record(api: httpx.Client, track: str, receiver: Receiver) -> str:
    answer = api.post(GENERATE, json={"audioId": track, "callBackUrl": receiver.url})
    task_id = str(answer.json()["data"]["taskId"])
    wait_for_wav(api, task_id)
    return task_id


def _timed_submit(api: httpx.Client, track: str, callback: str, waited: list[float]) -> None:
    started = time.monotonic()
    answer = api.post(GENERATE, json={"audioId": track, "callBackUrl": callback}, timeout=60)
    assert answer.status_code == 200, answer.text
    waited.append(time.monotonic() - started)


@embedded_only
def test_a_request_head_sent_a_byte_at_a_time_is_cut_off(
    make_server: MakeServer, tmp_path: Path
) -> None:
    """A client must send its request line and headers within the header timeout."""
    server = make_server(tmp_path, WAVFORGE_HEADER_TIMEOUT_SECONDS="1").start()
    try:
        with socket.create_connection(("127.0.0.1", server.port)) as slow:
            slow.settimeout(5)
            started = time.monotonic()
            try:
                for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: yes":
                    slow.sendall(bytes([byte]))
                    time.sleep(0.1)
                closed = slow.recv(1) == b""
            except (BrokenPipeError, ConnectionResetError):
                closed = True
            assert closed and time.monotonic() - started < 4
        with socket.create_connection(("127.0.0.1", server.port)) as idle:
            idle.settimeout(5)
            assert idle.recv(1) == b""  # connected, said nothing: closed as well
        assert httpx.get(f"{server.url}/healthz").status_code == 200  # others are served
    finally:
        server.stop()
