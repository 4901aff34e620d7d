"""Metrics and logs, through real servers in both modes: ``/metrics`` parsed the way Prometheus
reads it, and the request id followed from the HTTP edge into the worker's JSON log lines.

The usual servers run their worker in the API process, so what the worker counts is scraped
from the API there. Two tests run the worker as a process of its own, as a scale-out
deployment does: one scrapes it on ``WAVFORGE_METRICS_PORT``, the other shares a
``PROMETHEUS_MULTIPROC_DIR`` with the API process, whose ``/metrics`` then adds both up.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from wavforge.config import Settings
from wavforge.observability import logs
from wavforge.observability.metrics import prepare_multiprocess_dir
from wavforge.runtime import build_runtime
from wavforge.web import create_app

from audiogen import make_mp3
from conftest import (
    MakeServer,
    Server,
    assert_envelope,
    break_stored_source,
    import_file,
    wait_for_wav,
    wait_until,
)
from support.deployments import Modes
from support.processes import free_port
from support.receiver import Receiver

# Logs, request ids and metrics are the same code in both modes.
pytestmark = pytest.mark.embedded_only

TOKEN = "scrape-" + secrets.token_hex(16)
GENERATE = "/api/v1/wav/generate"
GENERATED_ID = re.compile(r"[0-9a-f]{32}")
REQUEST_SECONDS = "wavforge_http_request_duration_seconds_count"
CONVERSIONS = "wavforge_conversions_total"
CONVERSION_SECONDS = "wavforge_conversion_duration_seconds_count"
CALLBACKS = "wavforge_callback_attempts_total"
CHARGED = "wavforge_credits_charged_total"
REFUNDED = "wavforge_credits_refunded_total"
PURGED = "wavforge_purged_total"
DEPTH = "wavforge_queue_depth"


# --- helpers --------------------------------------------------------------------------------


class Scrape:
    """One scrape's samples, read as Prometheus would."""

    def __init__(self, url: str, token: str | None = None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = httpx.get(f"{url}/metrics", headers=headers, timeout=30)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/plain")
        families = text_string_to_metric_families(response.text)
        self.samples: list[Sample] = [s for family in families for s in family.samples]

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples of ``name`` whose labels include ``labels`` (0 if none)."""
        return sum(
            s.value
            for s in self.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        )

    def label_values(self, name: str, label: str) -> set[str]:
        return {s.labels[label] for s in self.samples if s.name == name and label in s.labels}


def moved(before: Scrape, after: Scrape, name: str, **labels: str) -> float:
    return after.value(name, **labels) - before.value(name, **labels)


def log_lines(path: Path) -> list[dict[str, Any]]:
    """Every line of a log, each of which must be one JSON object."""
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    parsed = [json.loads(line) for line in lines]
    for entry in parsed:
        assert {"time", "level", "logger", "message"} <= set(entry), entry
    return parsed


def server_log(server: Server) -> Path:
    return server.data_dir.parent / f"serve-{server.port}.log"


def lines_of_request(path: Path, request_id: str, logger: str) -> list[dict[str, Any]]:
    return [
        entry
        for entry in log_lines(path)
        if entry.get("request_id") == request_id and entry["logger"] == logger
    ]


def submit(api: httpx.Client, track_id: str, receiver: Receiver, **headers: str) -> httpx.Response:
    return api.post(
        GENERATE, json={"audioId": track_id, "callBackUrl": receiver.url}, headers=headers
    )


def start_worker(server: Server, log: Path, **env: str) -> subprocess.Popen[bytes]:
    """``wavforge worker`` on the server's deployment, as another machine would run it."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "wavforge", "worker"],
            env={**server.env, **env},
            stdout=out,
            stderr=out,
        )


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="module")
def observed(mode: Modes, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server of this module's own, so counters move only by what its tests do: metrics
    behind a token, and WAVs that expire after three seconds."""
    data = tmp_path_factory.mktemp("observed") / "data"
    data.mkdir()
    server = Server(
        data_dir=data,
        port=free_port(),
        deployment=mode.deployment(),
        extra_env={
            "WAVFORGE_METRICS_TOKEN": TOKEN,
            "WAVFORGE_RETENTION_SECONDS": "3",
            "WAVFORGE_PURGE_SECONDS": "0.5",
        },
    ).start()
    yield server
    server.stop()


# --- HTTP: routes, request ids, the token ---------------------------------------------------


def test_requests_are_counted_by_route_template_and_junk_collapses(server: Server) -> None:
    junk = secrets.token_hex(6)
    assert httpx.get(f"{server.url}/api/generate/status/{junk}").status_code == 401
    assert httpx.get(f"{server.url}/api/v1/wav/record-info?taskId={junk}").status_code == 401
    for path in (f"/{junk}/wp-login.php", f"/.env.{junk}", f"/api/v1/{junk}"):
        assert httpx.get(server.url + path).status_code == 404
    assert httpx.request("PROPFIND", f"{server.url}/healthz").status_code == 404
    assert httpx.get(f"{server.url}/console/static/console.css").status_code == 200

    scrape = Scrape(server.url)  # no token configured: open
    status_route = {"method": "GET", "route": "/api/generate/status/{task_id}", "status": "401"}
    assert scrape.value(REQUEST_SECONDS, **status_route) >= 1
    assert scrape.value(REQUEST_SECONDS, method="GET", route="/api/v1/wav/record-info") >= 1
    assert scrape.value(REQUEST_SECONDS, method="GET", route="unmatched", status="404") >= 3
    assert scrape.value(REQUEST_SECONDS, method="other", route="/healthz", status="404") >= 1
    assert scrape.value(REQUEST_SECONDS, route="/console/static/{path}", status="200") >= 1
    every_label = {value for s in scrape.samples for value in s.labels.values()}
    assert not [value for value in every_label if junk in value]
    routes = scrape.label_values(REQUEST_SECONDS, "route")
    assert all(route == "unmatched" or route.startswith("/") for route in routes)
    assert "/metrics" not in httpx.get(f"{server.url}/openapi.json").json()["paths"]


@pytest.mark.parametrize("sent", ["abc-123", "A.b:c_d-9", "x" * 64])
def test_a_plain_request_id_comes_back(server: Server, sent: str) -> None:
    for path in ("/healthz", "/api/generate/status/nope", "/no/such/path"):
        response = httpx.get(server.url + path, headers={"X-Request-ID": sent})
        assert response.headers["x-request-id"] == sent


@pytest.mark.parametrize(
    "sent",
    ["x" * 65, "two words", "<script>", 'quote"d', "semi;colon", b"\xc3\xbcml\xc3\xa4ut", ""],
)
def test_a_hostile_request_id_is_replaced(server: Server, sent: str | bytes) -> None:
    response = httpx.get(f"{server.url}/healthz", headers={"X-Request-ID": sent})
    assert GENERATED_ID.fullmatch(response.headers["x-request-id"])
    again = httpx.get(f"{server.url}/healthz", headers={"X-Request-ID": sent})
    assert again.headers["x-request-id"] != response.headers["x-request-id"]


def test_every_request_has_an_access_line_with_its_key_id(server: Server) -> None:
    """Method, path, status, milliseconds and the key's id; never the key, never a query."""
    made = server.create_key(credits=1)
    headers = {"Authorization": f"Bearer {made['key']}", "X-Request-ID": secrets.token_hex(8)}
    answer = httpx.get(f"{server.url}/api/v1/generate/credit?x=secret-query", headers=headers)
    assert answer.status_code == 200
    (line,) = wait_until(
        lambda: lines_of_request(server_log(server), headers["X-Request-ID"], "wavforge.access")
    )
    assert re.fullmatch(
        rf"GET /api/v1/generate/credit 200 \d+\.\d ms key_id={made['key_id']}", line["message"]
    )
    assert made["key"] not in server_log(server).read_text()
    refused = httpx.get(f"{server.url}/api/v1/generate/credit", headers={"X-Request-ID": "r-1"})
    (line,) = wait_until(lambda: lines_of_request(server_log(server), "r-1", "wavforge.access"))
    assert line["message"].startswith("GET /api/v1/generate/credit 401 ")
    assert line["message"].endswith("key_id=-") and refused.status_code == 401


def test_logs_are_text_at_a_terminal_and_json_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    assert isinstance(logs.make_formatter("auto"), logs.JsonFormatter)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert isinstance(logs.make_formatter("auto"), logs.TextFormatter)
    assert isinstance(logs.make_formatter("json"), logs.JsonFormatter)


def test_refusals_carry_a_request_id_too(server: Server) -> None:
    """Even the 413 the body limit sends before any route runs."""
    too_big = b"{" + b" " * (1024 * 1024 + 1) + b"}"
    headers = {"Content-Type": "application/json", "X-Request-ID": "big-1"}
    refused = httpx.post(f"{server.url}{GENERATE}", content=too_big, headers=headers)
    assert_envelope(refused, 413)
    assert refused.headers["x-request-id"] == "big-1"
    missing = httpx.get(f"{server.url}/api/v1/generate/credit")
    assert_envelope(missing, 401)
    assert GENERATED_ID.fullmatch(missing.headers["x-request-id"])


def test_metrics_need_the_token_when_one_is_set(observed: Server) -> None:
    url = f"{observed.url}/metrics"
    for headers in (
        {},
        {"Authorization": "Bearer wrong-token-of-some-length"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": TOKEN},
    ):
        refused = httpx.get(url, headers=headers)
        assert_envelope(refused, 401)
        assert refused.headers["www-authenticate"].startswith("Bearer")
        assert GENERATED_ID.fullmatch(refused.headers["x-request-id"])
        assert TOKEN not in refused.text
    assert Scrape(observed.url, TOKEN).value("wavforge_database_up") == 1


# --- the worker's events --------------------------------------------------------------------


def test_a_conversion_moves_its_counters_and_logs_the_submitting_request(
    observed: Server, receiver: Receiver, mp3: Path
) -> None:
    request_id = f"submit-{secrets.token_hex(6)}"
    with observed.client(observed.create_key(credits=10)["key"]) as api:
        track_id = import_file(api, mp3)["tracks"][0]["id"]
        before = Scrape(observed.url, TOKEN)
        answer = submit(api, track_id, receiver, **{"X-Request-ID": request_id})
        assert answer.status_code == 200 and answer.headers["x-request-id"] == request_id
        task_id = answer.json()["data"]["taskId"]
        assert wait_for_wav(api, task_id)["successFlag"] == "SUCCESS"
    receiver.wait_for(1)

    def delivered() -> Scrape | None:
        now = Scrape(observed.url, TOKEN)
        return now if moved(before, now, CALLBACKS, outcome="delivered") else None

    after = wait_until(delivered)
    assert moved(before, after, CALLBACKS, outcome="delivered") == 1
    assert moved(before, after, CONVERSIONS, outcome="succeeded") == 1
    assert moved(before, after, CONVERSIONS) == 1
    assert moved(before, after, CONVERSION_SECONDS, outcome="succeeded") == 1
    assert moved(before, after, "wavforge_conversion_duration_seconds_sum") > 0
    assert moved(before, after, CHARGED) == 1 and moved(before, after, REFUNDED) == 0
    submitted = {"method": "POST", "route": GENERATE, "status": "200"}
    assert moved(before, after, REQUEST_SECONDS, **submitted) == 1
    assert after.label_values(DEPTH, "queue") == {"conversions", "peaks", "callbacks"}

    log = server_log(observed)
    converted = wait_until(lambda: lines_of_request(log, request_id, "wavforge.core.conversion"))
    assert task_id in converted[0]["message"] and "converted" in converted[0]["message"]
    assert wait_until(lambda: lines_of_request(log, request_id, "wavforge.core.deliveries"))


def test_a_failed_conversion_is_refunded_and_counted_by_outcome(
    observed: Server, receiver: Receiver, tmp_path: Path
) -> None:
    with observed.client(observed.create_key(credits=5)["key"]) as api:
        track_id = import_file(api, make_mp3(tmp_path / "doomed.mp3", 1.0))["tracks"][0]["id"]
        break_stored_source(observed, track_id, tmp_path)
        before = Scrape(observed.url, TOKEN)
        task_id = submit(api, track_id, receiver).json()["data"]["taskId"]
        record = wait_for_wav(api, task_id)
        assert record["successFlag"] == "GENERATE_WAV_FAILED"
        assert api.get("/api/v1/generate/credit").json()["data"] == 5
    receiver.wait_for(1)
    after = wait_until(
        lambda: (now := Scrape(observed.url, TOKEN)) and moved(before, now, CALLBACKS) and now
    )
    assert moved(before, after, CHARGED) == 1 and moved(before, after, REFUNDED) == 1
    outcome = {400: "bad_source", 501: "conversion_failed"}[record["errorCode"]]
    assert moved(before, after, CONVERSIONS, outcome=outcome) == 1
    assert moved(before, after, CONVERSIONS, outcome="succeeded") == 0


def test_expired_wavs_are_counted_as_purged(
    observed: Server, receiver: Receiver, tmp_path: Path
) -> None:
    with observed.client(observed.create_key()["key"]) as api:
        track_id = import_file(api, make_mp3(tmp_path / "brief.mp3", 0.5))["tracks"][0]["id"]
        before = Scrape(observed.url, TOKEN)
        task_id = submit(api, track_id, receiver).json()["data"]["taskId"]
        assert wait_for_wav(api, task_id)["successFlag"] == "SUCCESS"
    wait_until(lambda: not observed.stored(f"wav/{task_id}"), timeout=20)
    after = wait_until(
        lambda: (now := Scrape(observed.url, TOKEN)) and moved(before, now, PURGED) and now
    )
    assert moved(before, after, PURGED, kind="expired_wav") >= 1
    assert after.label_values(PURGED, "kind") >= {"expired_wav", "orphan_wav"}


def test_every_line_of_the_servers_log_is_json(observed: Server) -> None:
    lines = log_lines(server_log(observed))
    assert "uvicorn.error" in {entry["logger"] for entry in lines}  # uvicorn's lines too
    assert TOKEN not in server_log(observed).read_text()


# --- workers in processes of their own ------------------------------------------------------


def test_a_lone_worker_serves_its_own_metrics_and_logs_the_request_id(
    make_server: MakeServer, tmp_path: Path, receiver: Receiver, mp3: Path
) -> None:
    """The API converts nothing: its counters stay at 0, the worker's move. A submission the
    quota refuses rolls its charge back, and the charge is not counted."""
    api_server = make_server(tmp_path, WAVFORGE_MAX_UNFINISHED="1")
    api_server.start_args = ["--no-worker"]
    api_server.start()
    worker_log, port = tmp_path / "worker.log", free_port()
    worker = None
    try:
        with api_server.client(api_server.create_key()["key"]) as api:
            first, second = (import_file(api, mp3)["tracks"][0]["id"] for _ in range(2))
            before = Scrape(api_server.url)
            request_id = f"lone-{secrets.token_hex(6)}"
            accepted = submit(api, first, receiver, **{"X-Request-ID": request_id})
            assert accepted.status_code == 200
            assert_envelope(submit(api, second, receiver), 405)  # charged, then rolled back
            waiting = Scrape(api_server.url)
            assert moved(before, waiting, CHARGED) == 1
            assert waiting.value(DEPTH, queue="conversions", state="pending") == 1

            worker = start_worker(api_server, worker_log, WAVFORGE_METRICS_PORT=str(port))
            task_id = accepted.json()["data"]["taskId"]
            assert wait_for_wav(api, task_id)["successFlag"] == "SUCCESS"
        receiver.wait_for(1)
        lone = f"http://127.0.0.1:{port}"
        scraped = wait_until(lambda: (s := Scrape(lone)) and s.value(CALLBACKS) and s)
        assert scraped.value(CONVERSIONS, outcome="succeeded") == 1
        assert scraped.value(CALLBACKS, outcome="delivered") == 1
        assert Scrape(api_server.url).value(CONVERSIONS) == 0
        assert Scrape(api_server.url).value(DEPTH, queue="conversions") == 0

        converted = lines_of_request(worker_log, request_id, "wavforge.core.conversion")
        assert converted and task_id in converted[0]["message"]
        assert lines_of_request(worker_log, request_id, "wavforge.core.deliveries")
    finally:
        if worker:
            stop(worker)
        api_server.stop()


def test_processes_sharing_a_metrics_directory_are_scraped_as_one(
    make_server: MakeServer, tmp_path: Path, receiver: Receiver, mp3: Path
) -> None:
    """``PROMETHEUS_MULTIPROC_DIR``, as ``wavforge serve`` sets it for several processes: the
    API process's ``/metrics`` reports the worker process's conversions too."""
    directory = tmp_path / "metrics"
    directory.mkdir()
    (directory / "counter_1.db").write_bytes(b"left by an earlier run")
    (directory / "notes.txt").write_text("not prometheus-client's")
    assert prepare_multiprocess_dir(directory) == directory
    assert [entry.name for entry in directory.iterdir()] == ["notes.txt"]

    api_server = make_server(tmp_path, PROMETHEUS_MULTIPROC_DIR=str(directory))
    api_server.start_args = ["--no-worker"]
    api_server.start()
    worker = start_worker(api_server, tmp_path / "worker.log")
    try:
        with api_server.client(api_server.create_key()["key"]) as api:
            track_id = import_file(api, mp3)["tracks"][0]["id"]
            task_id = submit(api, track_id, receiver).json()["data"]["taskId"]
            assert wait_for_wav(api, task_id)["successFlag"] == "SUCCESS"
        receiver.wait_for(1)
        scraped = wait_until(lambda: (s := Scrape(api_server.url)) and s.value(CALLBACKS) and s)
        assert scraped.value(CONVERSIONS, outcome="succeeded") == 1  # counted by the worker
        assert scraped.value(CHARGED) == 1  # counted by the API
        assert scraped.value(REQUEST_SECONDS, method="POST", route=GENERATE) == 1
        assert scraped.value("wavforge_database_up") == 1
        assert not scraped.value("process_cpu_seconds_total")  # no single-process collectors
        assert api_server.process is not None
        files = {entry.name for entry in directory.glob("*.db")}
        assert {f"counter_{api_server.process.pid}.db", f"counter_{worker.pid}.db"} <= files
    finally:
        stop(worker)
        api_server.stop()


# --- in process -----------------------------------------------------------------------------


def test_log_lines_never_carry_secrets() -> None:
    line = (
        "POST https://hooks.example.com/in?token=abc&sig=1 with Bearer wf_abcdefghijklmnop, "
        "secret whsec_QUJDREVGR0hJSktMTU5PUA== and /files/wav/t/a.wav?expires=1&signature=ff00"
    )
    cleaned = logs.redact(line)
    for secret in ("token=abc", "sig=1", "wf_abcdefghijklmnop", "QUJDREVG", "ff00"):
        assert secret not in cleaned
    assert "https://hooks.example.com/in?[redacted]" in cleaned
    assert logs.redact("task 1f2e: converted (44 bytes)") == "task 1f2e: converted (44 bytes)"


def test_a_json_line_holds_the_request_id_and_the_traceback() -> None:
    record = logging.LogRecord("wavforge.x", logging.ERROR, __file__, 1, "failed %s", ("t",), None)
    try:
        raise ValueError("see https://example.com/x?signature=abc")
    except ValueError:
        record.exc_info = sys.exc_info()
    with logs.request_context("rid-1"):
        logs.RequestIdFilter().filter(record)
    line = json.loads(logs.JsonFormatter().format(record))
    assert line["request_id"] == "rid-1" and line["message"] == "failed t"
    assert line["level"] == "ERROR" and line["logger"] == "wavforge.x"
    assert "ValueError" in line["exc_info"] and "signature=abc" not in line["exc_info"]
    assert logs.current_request_id() is None


def test_a_crash_answers_500_with_its_request_id_and_logs_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The id is set outside even the layer that turns a crash into a 500. No route of the
    service crashes on purpose, so the test adds one to the real app, in process."""
    runtime = build_runtime(Settings(data_dir=tmp_path))
    try:
        app = create_app(runtime, with_worker=False)

        async def crash() -> None:
            raise RuntimeError("a bug")

        app.add_api_route("/crash", crash)
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)

        async def call() -> httpx.Response:
            async with httpx.AsyncClient(transport=transport, base_url="http://wavforge") as c:
                return await c.get("/crash", headers={"X-Request-ID": "crash-1"})

        caplog.handler.addFilter(logs.RequestIdFilter())
        with caplog.at_level(logging.ERROR, logger="wavforge"):
            answer = asyncio.run(call())
    finally:
        runtime.close()
    assert_envelope(answer, 500)
    assert answer.headers["x-request-id"] == "crash-1"
    (crashed,) = [r for r in caplog.records if r.name == "wavforge.http.errors"]
    assert getattr(crashed, "request_id", None) == "crash-1"
