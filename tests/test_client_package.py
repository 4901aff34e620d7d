"""The client is its own distribution: installed alone, in a virtual environment of its own,
it brings nothing of the server, and its tests pass against a running server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import wavforge_client

from conftest import Server
from support.processes import free_port

ROOT = Path(__file__).resolve().parents[1]
CLIENT = ROOT / "client"
SERVER_ONLY = {"av", "boto3", "psycopg", "psycopg-binary", "sqlalchemy", "fastapi", "numpy"}


@pytest.fixture(scope="module")
def client_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment (no system packages) with ``pip install ./client[test]``."""
    venv = tmp_path_factory.mktemp("client-venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True, timeout=120)
    python = venv / "bin" / "python"
    install = [python, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*install, f"{CLIENT}[test]"], check=True, timeout=600)
    return python


def test_installing_the_client_brings_nothing_of_the_server(client_venv: Path) -> None:
    listed = subprocess.run(
        [client_venv, "-m", "pip", "list", "--format=json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    installed = {row["name"].lower() for row in json.loads(listed.stdout)}
    assert "wavforge-client" in installed and "httpx" in installed
    assert installed & (SERVER_ONLY | {"wavforge"}) == set()


def test_the_clients_own_tests_pass_against_a_running_server(
    client_venv: Path, tmp_path: Path
) -> None:
    (tmp_path / "data").mkdir()
    server = Server(data_dir=tmp_path / "data", port=free_port()).start()
    try:
        key = server.create_key(name="client-tests", credits=10)["key"]
        env = {**os.environ, "WAVFORGE_URL": server.url, "WAVFORGE_API_KEY": key}
        env.pop("PYTHONPATH", None)  # the venv's own packages only
        run = subprocess.run(
            [client_venv, "-m", "pytest", "-q", "-p", "no:cacheprovider", CLIENT / "tests"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
    finally:
        server.stop()
    assert run.returncode == 0, run.stdout + run.stderr
    assert "4 passed" in run.stdout


def test_the_client_and_server_agree_on_the_clients_version() -> None:
    client_meta = tomllib.loads((CLIENT / "pyproject.toml").read_text())["project"]
    server_meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert client_meta["version"] == wavforge_client.__version__
    assert client_meta["dependencies"] == ["httpx>=0.27", "anyio>=4.0"]
    required = [d for d in server_meta["dependencies"] if d.startswith("wavforge-client")]
    assert required == ["wavforge-client>=0.1,<0.2"] and client_meta["version"].startswith("0.1.")
