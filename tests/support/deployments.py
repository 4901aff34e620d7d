"""The two ways wavforge runs, for the tests and the benchmarks.

``embedded``: SQLite, a SQLite queue and a local directory in the data dir, nothing else.
``scaleout``: PostgreSQL, Redis and S3 — a fresh database, queue name and bucket for each
deployment, so tests never see each other's rows. PostgreSQL and Redis are the real servers
(``scripts/test-services`` starts them on loopback); S3 is moto's standalone server, an
emulator of the S3 API started here as a subprocess.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import httpx
import psycopg

from .processes import free_port

POSTGRES_ADMIN = os.environ.get(
    "WAVFORGE_TEST_POSTGRES", "postgresql://wavforge:wavforge@127.0.0.1:5432/postgres"
)
REDIS = os.environ.get("WAVFORGE_TEST_REDIS", "redis://127.0.0.1:6379/0")
MODES = ("embedded", "scaleout")
# moto accepts any credentials; boto3 just needs some.
EMULATOR_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


class S3Emulator:
    """moto's standalone S3 server on a loopback port.

    Starting one gives this process the emulator's credentials where it has none (boto3 needs
    some), so the boto3 clients here and the wavforge processes started from here find them.
    """

    def __init__(self, log: Path) -> None:
        for name, value in EMULATOR_CREDENTIALS.items():
            os.environ.setdefault(name, value)
        self.port = free_port()
        with log.open("ab") as out:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=out,
                stderr=out,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(self.url, timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("moto server did not start")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self):  # type: ignore[no-untyped-def]
        return boto3.session.Session().client("s3", endpoint_url=self.url)

    def stop(self) -> None:
        self._process.terminate()
        self._process.wait(timeout=10)


@dataclass
class Deployment:
    """The shared parts one wavforge deployment runs on, as ``WAVFORGE_*`` settings."""

    mode: str
    env: dict[str, str] = field(default_factory=dict)
    database: str | None = None
    bucket: str | None = None


class Modes:
    """Creates deployments in one mode and removes what they left at the end."""

    def __init__(self, mode: str, s3: S3Emulator | None) -> None:
        self.mode = mode
        self._s3 = s3
        self._made: list[Deployment] = []

    @property
    def scaleout(self) -> bool:
        return self.mode == "scaleout"

    def deployment(self, files: Path | None = None) -> Deployment:
        """A fresh database, queue name and bucket; with ``files``, a shared local directory
        instead of the bucket (as an NFS mount would be), and no S3 emulator needed."""
        if not self.scaleout:
            return Deployment(self.mode)
        name = f"wf_{secrets.token_hex(6)}"
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        env = {
            "WAVFORGE_DATABASE_URL": POSTGRES_ADMIN.rsplit("/", 1)[0] + f"/{name}",
            "WAVFORGE_REDIS_URL": REDIS,
            "WAVFORGE_QUEUE_NAME": name,
        }
        bucket = None
        if files is not None:
            env["WAVFORGE_STORAGE_URL"] = f"file://{files}"
        else:
            assert self._s3 is not None
            bucket = name.replace("_", "-")
            self._s3.client().create_bucket(Bucket=bucket)
            env["WAVFORGE_STORAGE_URL"] = f"s3://{bucket}/files"
            env["WAVFORGE_S3_ENDPOINT_URL"] = self._s3.url
        made = Deployment(self.mode, env=env, database=name, bucket=bucket)
        self._made.append(made)
        return made

    def s3(self) -> S3Emulator:
        assert self._s3 is not None
        return self._s3

    def close(self) -> None:
        if not self._made:
            return
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
            for made in self._made:
                admin.execute(f'DROP DATABASE IF EXISTS "{made.database}" WITH (FORCE)')


def modes(mode: str, s3: S3Emulator | None) -> Iterator[Modes]:
    made = Modes(mode, s3 if mode == "scaleout" else None)
    try:
        yield made
    finally:
        made.close()
