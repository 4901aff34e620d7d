"""Real parts on loopback: wavforge servers as subprocesses, a callback receiver, real files."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

import wavforge.audio.engine as engine_module
from wavforge.audio import isolation
from wavforge.capacity import usable_cpus
from wavforge.config import Settings
from wavforge.db.database import Database
from wavforge.storage import Storage, open_storage

from audiogen import make_mp3
from support.bytecode import compile_packages
from support.deployments import MODES, Deployment, Modes, S3Emulator, modes
from support.processes import free_port
from support.receiver import Receiver

STARTUP_SECONDS = 30
# What a server a test has limited or switched off answers; a key is then made on the command line.
REFUSALS = {429, 430, 455, 503}


def pytest_configure(config: pytest.Config) -> None:
    """Compile wavforge once, in the controlling process before any test process starts, so
    the servers and commands the tests start read bytecode (see ``support.bytecode``)."""
    if not hasattr(config, "workerinput"):
        compile_packages("wavforge", "wavforge_client")


def wavforge(
    *args: str, env: dict[str, str], check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run the real command line, as an operator would."""
    return subprocess.run(
        [sys.executable, "-m", "wavforge", *args],
        env=env,
        capture_output=True,
        text=True,
        check=check,
        timeout=60,
    )


@dataclass
class Server:
    """A ``wavforge serve`` process on its own data dir and port, in one deployment."""

    data_dir: Path
    port: int
    deployment: Deployment = field(default_factory=lambda: Deployment("embedded"))
    extra_env: dict[str, str] = field(default_factory=dict)
    start_args: list[str] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None
    admin_key: str | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("WAVFORGE_")}
        env.update(
            WAVFORGE_DATA_DIR=str(self.data_dir),
            WAVFORGE_PORT=str(self.port),
            WAVFORGE_CALLBACK_ALLOW_PRIVATE="true",
            WAVFORGE_SWEEP_SECONDS="0.5",
            WAVFORGE_LEASE_SECONDS="3",
            # Tests of other behaviour race many requests on one key; the 430 test sets its own.
            WAVFORGE_RATE_LIMIT="100000/second",
        )
        env.update(self.deployment.env)
        env.update(self.extra_env)
        return env

    @property
    def log_path(self) -> Path:
        """Where the server's output goes (kept across restarts on the same port)."""
        return self.data_dir.parent / f"serve-{self.port}.log"

    @property
    def scaleout(self) -> bool:
        return self.deployment.mode == "scaleout"

    def settings(self) -> Settings:
        """The settings the server runs with, for tests that look behind the API."""
        values = {
            name.removeprefix("WAVFORGE_").lower(): value
            for name, value in self.env.items()
            if name.startswith("WAVFORGE_")
        }
        return Settings(**values)

    def storage(self) -> Storage:
        return open_storage(self.settings())

    def stored(self, prefix: str = "") -> list[str]:
        """Keys of the files in the server's storage, wherever that is."""
        return list(self.storage().keys(prefix))

    def break_storage(self) -> None:
        """Make every later write to storage fail."""
        if self.scaleout:
            s3 = boto3.session.Session().client(
                "s3", endpoint_url=self.env["WAVFORGE_S3_ENDPOINT_URL"]
            )
            s3.delete_bucket(Bucket=self.deployment.bucket)
            return
        sources = self.data_dir / "files" / "sources"
        shutil.rmtree(sources, ignore_errors=True)
        sources.parent.mkdir(parents=True, exist_ok=True)
        sources.write_text("a file where the sources directory should be")

    @contextmanager
    def database(self) -> Iterator[Database]:
        db = Database(self.settings().resolved_database_url)
        try:
            yield db
        finally:
            db.dispose()

    def start(self) -> Server:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "wavforge", "serve", *self.start_args],
                env=self.env,
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("server did not start")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def create_key(
        self, credits: int = 100, name: str = "test", profile: str | None = None
    ) -> dict[str, Any]:
        """A new account and its key: through the admin API while the server runs (a request
        takes milliseconds, where each ``wavforge keys create`` is a 0.8-s interpreter start,
        and 300 tests make one), else with the command line on the server's data dir."""
        if self.process is None or self.process.poll() is not None:
            return _key_by_command(self.env, credits, name, profile)
        body = {"name": name, "credits": credits} | ({"profile": profile} if profile else {})
        with self.admin() as admin:
            answer = admin.post("/api/v1/admin/accounts", json=body)
        if answer.status_code in REFUSALS:  # a test's own rate limit or maintenance
            return _key_by_command(self.env, credits, name, profile)
        assert answer.status_code == 200, answer.text
        made = answer.json()["data"]
        return {
            "key": made["key"],
            "key_id": made["keyId"],
            "account_id": made["accountId"],
            "webhook_secret": made["webhookSecret"],
            "credits": credits,
            "profile": made["profile"],
        }

    def _admin_key(self) -> str:
        """The key the tests' own admin account makes accounts with (one command per server)."""
        if self.admin_key is None:
            made = wavforge(
                "keys", "create", "--name", "tests-admin", "--admin", "--json", env=self.env
            )
            self.admin_key = str(json.loads(made.stdout)["key"])
        return self.admin_key

    def admin(self) -> httpx.Client:
        """A client with the tests' own admin key, for setting up what a test then reads."""
        return self.client(self._admin_key())

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


MakeServer = Callable[..., Server]


def _key_by_command(
    env: dict[str, str], credits: int, name: str, profile: str | None
) -> dict[str, Any]:
    chosen = ["--profile", profile] if profile else []
    result = wavforge(
        "keys", "create", "--name", name, "--credits", str(credits), *chosen, "--json", env=env
    )
    return dict(json.loads(result.stdout))


@pytest.fixture(scope="session")
def s3_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Emulator]:
    emulator = S3Emulator(tmp_path_factory.mktemp("moto") / "moto.log")
    yield emulator
    emulator.stop()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Each service test runs once per mode: embedded, then scale-out, unless its module is
    marked ``embedded_only``: what it proves (the HTTP surface, the CLI, the console, the
    logs) is the same code whatever holds the data, so the second run would prove nothing
    new. The parts that differ by mode (database, queue, storage, leases, process faults)
    keep both runs. ``WAVFORGE_TEST_ALL_MODES=1`` runs every service test in both modes."""
    if "mode" in metafunc.fixturenames:
        marked = metafunc.definition.get_closest_marker("embedded_only") is not None
        every = bool(os.environ.get("WAVFORGE_TEST_ALL_MODES"))
        chosen = ["embedded"] if marked and not every else list(MODES)
        metafunc.parametrize("mode", chosen, indirect=True, scope="session")


@pytest.fixture(scope="session")
def mode(request: pytest.FixtureRequest) -> Iterator[Modes]:
    """The deployments of one mode (``pytest_generate_tests`` chooses which)."""
    s3 = request.getfixturevalue("s3_emulator") if request.param == "scaleout" else None
    yield from modes(request.param, s3)


def _server_maker(mode: Modes) -> MakeServer:
    def make(tmp: Path, **env: str) -> Server:
        """A server (not started) on a new data dir and a new deployment of the mode."""
        data = tmp / "data"
        data.mkdir(parents=True, exist_ok=True)
        return Server(data_dir=data, port=free_port(), deployment=mode.deployment(), extra_env=env)

    return make


@pytest.fixture
def make_server(mode: Modes) -> MakeServer:
    return _server_maker(mode)


@pytest.fixture(scope="session")
def server(mode: Modes, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One shared server for tests that do not disturb it."""
    running = _server_maker(mode)(
        tmp_path_factory.mktemp("shared"), WAVFORGE_MAX_UPLOAD_BYTES=str(4 * 1024 * 1024)
    ).start()
    yield running
    running.stop()


@pytest.fixture
def own_server(make_server: MakeServer, tmp_path: Path) -> Iterator[Server]:
    """A server of the test's own, for tests that damage or kill it (not started yet)."""
    created = make_server(tmp_path)
    yield created
    created.stop()


@pytest.fixture
def account(server: Server) -> dict[str, Any]:
    return server.create_key()


@pytest.fixture
def api(server: Server, account: dict[str, Any]) -> Iterator[httpx.Client]:
    with server.client(account["key"]) as client:
        yield client


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.close()


@pytest.fixture(scope="session")
def mp3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_mp3(tmp_path_factory.mktemp("audio") / "song.mp3", 4.0, title="Song Title")


def import_file(api: httpx.Client, path: Path, **form: str) -> dict[str, Any]:
    with path.open("rb") as handle:
        response = api.post("/api/v1/music/import", files={"file": (path.name, handle)}, data=form)
    assert response.status_code == 200, response.text
    return dict(response.json()["data"])


def break_stored_source(server: Server, track_id: str, tmp_path: Path) -> None:
    """Corrupt the stored source after import: the conversion, not the import, must fail."""
    (key,) = [k for k in server.stored(f"sources/{track_id}.") if not k.endswith(".peaks.json")]
    garbage = tmp_path / "garbage.mp3"
    garbage.write_bytes(b"\xff\xfb\x90\x00" + b"garbage" * 2000)
    server.storage().put(key, garbage)


def assert_envelope(response: httpx.Response, code: int) -> dict[str, Any]:
    assert response.status_code == code, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"code", "msg", "data"}
    assert body["code"] == code
    assert isinstance(body["msg"], str) and body["msg"]
    return dict(body)


def wait_until(predicate: Any, timeout: float = 30) -> Any:
    """Poll ``predicate`` until it returns something truthy, and return that."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not reached")


def wait_for_source_peaks(api: httpx.Client, track_id: str, timeout: float = 30) -> dict[str, Any]:
    """The track's source peaks, once the background job that follows its import stored them."""
    path = f"/api/v1/account/tracks/{track_id}/peaks"
    answer = wait_until(lambda: (found := api.get(path)).status_code == 200 and found, timeout)
    return dict(answer.json()["data"])


def wait_for_wav(api: httpx.Client, task_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = api.get("/api/v1/wav/record-info", params={"taskId": task_id}).json()["data"]
        if data["successFlag"] != "PENDING":
            return dict(data)
        time.sleep(0.05)
    raise AssertionError(f"task {task_id} still pending after {timeout} s")


def _wait_for_other_threads(timeout: float = 20) -> None:
    """The engine forks only in a process with no other thread. Helper threads of earlier
    tests (an HTTP library's idle lookup or connection threads, a receiver's) end on their
    own within seconds; wait for them, and name any that stays. The converter pools' spawner
    thread lives as long as the process, so it is ended here (the next pool starts another)."""
    isolation.stop_spawner()
    deadline = time.monotonic() + timeout
    while threading.active_count() > 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    others = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    assert not others, f"threads left by earlier tests: {others}"


@pytest.fixture
def split_counts(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Records how many parts each conversion was cut into.

    The engine only splits when it is safe (MP3, >= 2 minutes, 2+ CPUs, no other threads) and
    silently decodes in one piece otherwise, which would make split tests pass vacuously.
    """
    _wait_for_other_threads()
    counts: list[int] = []
    original = engine_module.spans_for

    def spy(src: Path, job: Any) -> Any:
        spans = original(src, job)
        counts.append(len(spans))
        return spans

    monkeypatch.setattr(engine_module, "spans_for", spy)
    return counts


needs_two_cpus = pytest.mark.skipif(
    usable_cpus() < 2, reason="the engine never splits on a single CPU"
)


# tests/test_fuzz.py counts the cases schemathesis generated; the summary prints them, since CI
# runs without -s. Keys: (mode, operation, HTTP status) -> cases.
FUZZ_CASES: Counter[tuple[str, str, int]] = Counter()
FUZZ_FAILURES: set[str] = set()  # operations with a failing case


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One line: the cases schemathesis generated, over how many operations, how it went."""
    if not FUZZ_CASES:
        return
    by_mode: Counter[str] = Counter()
    for (mode, _, _), count in FUZZ_CASES.items():
        by_mode[mode] += count
    operations = len({operation for _, operation, _ in FUZZ_CASES})
    modes = ", ".join(f"{mode} {count}" for mode, count in by_mode.items())
    outcome = f"{len(FUZZ_FAILURES)} operations failing" if FUZZ_FAILURES else "no failures"
    terminalreporter.write_line(
        f"schemathesis: {by_mode.total()} generated cases ({modes}) over {operations} operations, "
        f"{outcome}"
    )
