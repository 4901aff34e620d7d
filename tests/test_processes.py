"""Process shapes: the API without a worker plus a worker alone; the OpenAPI docs."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx

from conftest import MakeServer, Receiver, Server, import_file, wait_for_wav


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
