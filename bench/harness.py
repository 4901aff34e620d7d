"""What the service benchmarks share: wavforge processes on a free port, keys, imports, a
callback receiver, process-tree sampling from ``/proc``, machine facts and report helpers.

``throughput.py``, ``load.py``, ``callback_latency.py`` and ``soak.py`` build on it. The audio
inputs, the table helpers and the version facts come from ``engine.py``, the first benchmark;
the receiver, bulk imports, ports and process trees from ``tests/support``, which the tests use
too.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import signal
import statistics
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.markup import escape

from bench.engine import (
    ToolFailed,
    encode_command,
    ensure_input,
    git_revision,
    markdown_table,
    report_head,
    rich_table,
    run_checked,
    wavforge_command,
)
from bench.engine import machine_info as engine_machine_info
from tests.support.imports import import_tracks
from tests.support.processes import descendants, free_port, proc_stat
from tests.support.receiver import Callback, Receiver

__all__ = [
    "Callback",
    "Key",
    "Receiver",
    "Service",
    "ToolFailed",
    "TreeSampler",
    "console",
    "cpu_seconds",
    "descendants",
    "ensure_input",
    "envelope",
    "figure",
    "git_revision",
    "import_tracks",
    "listening_processes",
    "machine_info",
    "main_of",
    "make_clip",
    "markdown_table",
    "parser",
    "pyplot",
    "rich_table",
    "save",
    "service",
    "settings_of",
    "spread",
    "write_json",
    "write_report",
]

MIB = 1024 * 1024
PAGE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")


def console() -> Console:
    """A console 120 columns wide when piped, as wide as the terminal otherwise."""
    return Console(width=shutil.get_terminal_size((120, 24)).columns)


# --- inputs ------------------------------------------------------------------------------------


def make_clip(path: Path, seconds: float) -> Path:
    """A short 320 kb/s stereo MP3 like ``engine.py``'s inputs (tones over pink noise).

    Made fresh into the run's own directory: it takes a fraction of a second, so nothing is
    cached between runs.
    """
    run_checked(encode_command(seconds, path))  # type: ignore[arg-type]  # a float works
    return path


# --- wavforge processes -----------------------------------------------------------------------


@dataclass(frozen=True)
class Key:
    """An account's API key (never printed)."""

    key: str
    account_id: str

    def __repr__(self) -> str:
        return f"Key(account_id={self.account_id!r})"


class Service:
    """The wavforge processes of one deployment on a free loopback port, each with a log.

    Every process gets the caller's environment minus any ``WAVFORGE_*`` variable, then
    ``settings``. Without ``WAVFORGE_DATABASE_URL`` (the embedded default) every process shares
    one fresh data dir, ``root/data``; otherwise each gets its own scratch dir, ``root/<name>``.
    """

    def __init__(self, root: Path, settings: Mapping[str, str] | None = None) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("WAVFORGE_")}
        self.env |= {"WAVFORGE_PORT": str(self.port), "WAVFORGE_CALLBACK_ALLOW_PRIVATE": "true"}
        self.env |= dict(settings or {})
        if "WAVFORGE_DATABASE_URL" not in self.env:
            self.env["WAVFORGE_DATA_DIR"] = str(root / "data")
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def env_for(self, name: str) -> dict[str, str]:
        if "WAVFORGE_DATA_DIR" in self.env:
            return self.env
        return self.env | {"WAVFORGE_DATA_DIR": str(self.root / name)}

    @property
    def data_dir(self) -> Path:
        return Path(self.env_for("api")["WAVFORGE_DATA_DIR"])

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        with (self.root / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(
                [*wavforge_command(), *args], env=self.env_for(name), stdout=log, stderr=log
            )
        self.processes[name] = process
        return process

    def serve(self, *, worker: bool) -> subprocess.Popen[bytes]:
        """``wavforge serve`` (``--no-worker`` unless ``worker``), once it answers /healthz."""
        process = self.start("api", "serve", *([] if worker else ["--no-worker"]))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise ToolFailed(f"wavforge serve exited with {process.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return process
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise ToolFailed(f"wavforge serve did not answer /healthz in 60 s:\n{self.log()}")

    @property
    def pid(self) -> int:
        return self.processes["api"].pid

    def log(self, name: str = "api", lines: int = 20) -> str:
        path = self.root / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def cli(self, *args: str) -> str:
        """A ``wavforge`` command against this deployment's database; its stdout."""
        argv = [*wavforge_command(), *args]
        done = subprocess.run(argv, env=self.env_for("api"), capture_output=True, text=True)
        if done.returncode != 0:
            raise ToolFailed(f"{' '.join(args)} exited with {done.returncode}: {done.stderr}")
        return done.stdout

    def create_key(self, name: str, *, credits: int = 0, admin: bool = False) -> Key:
        """An account and its key, by ``wavforge keys create``."""
        flags = ["--credits", str(credits), *(["--admin"] if admin else [])]
        issued = json.loads(self.cli("keys", "create", "--name", name, *flags, "--json"))
        return Key(issued["key"], issued["account_id"])

    def create_keys(self, count: int, *, credits: int = 0) -> list[Key]:
        """``count`` accounts with a key each: one admin key from the CLI makes the rest
        through the admin API (a CLI process per key would take a second each)."""
        admin = self.create_key("bench-admin", admin=True)
        keys = []
        with self.client(admin) as client:
            for number in range(count):
                body = {"name": f"bench-{number}", "credits": credits}
                data = envelope(client.post("/api/v1/admin/accounts", json=body))
                keys.append(Key(data["key"], data["accountId"]))
        return keys

    def client(self, key: Key, **options: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key.key}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60, **options)

    def stop(self, timeout: float = 120) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextmanager
def service(
    root: Path, settings: Mapping[str, str] | None = None, *, worker: bool = True, workers: int = 0
) -> Iterator[Service]:
    """``wavforge serve`` (with its embedded worker unless ``worker`` is false) and
    ``workers`` separate ``wavforge worker`` processes; all stopped with SIGTERM at the end."""
    running = Service(root, settings)
    try:
        running.serve(worker=worker)
        for number in range(workers):
            running.start(f"worker{number}", "worker")
        yield running
    except Exception as error:
        # A server that died mid-run explains the error better than the error itself.
        died = [name for name, process in running.processes.items() if process.poll() is not None]
        if died:
            logs = "\n".join(f"{name}.log:\n{running.log(name)}" for name in died)
            raise ToolFailed(
                f"{', '.join(died)} died during the run ({error!r}); {logs}"
            ) from error
        raise
    finally:
        running.stop()


def envelope(response: httpx.Response) -> Any:
    """The ``data`` of a Suno-style answer; an error status or envelope raises."""
    response.raise_for_status()
    body = response.json()
    if body.get("code") != 200:
        raise RuntimeError(f"{response.request.url.path}: {body.get('code')} {body.get('msg')}")
    return body["data"]


# --- processes, from /proc --------------------------------------------------------------------


@dataclass(frozen=True)
class ProcessSample:
    pid: int
    rss: int  # bytes
    pss: int | None  # bytes; None where smaps_rollup cannot be read
    fds: int
    threads: int
    cpu: float  # seconds of user + system time, its own


def sample_process(pid: int) -> ProcessSample | None:
    """One process's memory, descriptors, threads and CPU; None if it is gone."""
    fields = proc_stat(pid)
    if fields is None:
        return None
    try:
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None
    pss = None
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                pss = int(line.split()[1]) * 1024
                break
    except OSError:
        pass
    # stat fields after the name: 0 state, 1 ppid, 11 utime, 12 stime, 17 threads, 21 rss
    return ProcessSample(
        pid=pid,
        rss=int(fields[21]) * PAGE,
        pss=pss,
        fds=fds,
        threads=int(fields[17]),
        cpu=(int(fields[11]) + int(fields[12])) / TICKS,
    )


def cpu_seconds(pid: int) -> float:
    """CPU time of ``pid`` and every live descendant, plus the children it has reaped."""
    total = 0.0
    for member in [pid, *descendants(pid)]:
        if fields := proc_stat(member):
            total += sum(int(value) for value in fields[11:15]) / TICKS
    return total


def listening_processes(root: int, port: int) -> int:
    """How many processes of ``root``'s tree hold a listening socket on ``port``."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{fields[9]}]")
    holders = 0
    for pid in [root, *descendants(root)]:
        try:
            links = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
        except OSError:
            continue
        holders += bool(links & inodes)
    return holders


class TreeSampler:
    """Samples a process (``server``) and its descendants (``children``) every ``interval``
    seconds in a thread: RSS, PSS, open descriptors and threads, plus ``extra()``'s fields."""

    FIELDS = ("rss_mb", "pss_mb", "fds", "threads")

    def __init__(
        self, pid: int, interval: float = 1.0, extra: Callable[[], dict[str, Any]] | None = None
    ) -> None:
        self.pid = pid
        self.interval = interval
        self.extra = extra or dict
        self.rows: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._began = time.monotonic()

    def start(self) -> TreeSampler:
        self._began = time.monotonic()
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop sampling, after one last sample of the state at the end."""
        self._stop.set()
        self._thread.join()
        self.rows.append(self.sample())

    def _run(self) -> None:
        while not self._stop.is_set():
            self.rows.append(self.sample())
            self._stop.wait(self.interval)

    def sample(self) -> dict[str, Any]:
        row: dict[str, Any] = {"seconds": round(time.monotonic() - self._began, 2)}
        row |= self.extra()
        children = [s for pid in descendants(self.pid) if (s := sample_process(pid))]
        server = sample_process(self.pid)
        for group, samples in (("server", [server] if server else []), ("children", children)):
            pss = [s.pss for s in samples]
            row[f"{group}_count"] = len(samples)
            row[f"{group}_rss_mb"] = round(sum(s.rss for s in samples) / MIB, 2)
            row[f"{group}_pss_mb"] = round(sum(pss) / MIB, 2) if None not in pss else ""  # type: ignore[arg-type]
            row[f"{group}_fds"] = sum(s.fds for s in samples)
            row[f"{group}_threads"] = sum(s.threads for s in samples)
        row["total_rss_mb"] = round(row["server_rss_mb"] + row["children_rss_mb"], 2)
        return row

    def write_csv(self, path: Path) -> None:
        if not self.rows:
            return
        with path.open("w", newline="") as out:
            writer = csv.DictWriter(out, fieldnames=list(self.rows[0]))
            writer.writeheader()
            writer.writerows(self.rows)


# --- numbers, machine, report -----------------------------------------------------------------


def spread(values: Sequence[float], scale: float = 1.0, digits: int = 3) -> tuple[str, ...]:
    """Median, min and max of ``values`` times ``scale``, formatted."""
    return tuple(
        f"{value * scale:.{digits}f}"
        for value in (statistics.median(values), min(values), max(values))
    )


def machine_info(load_at_start: float, **extra: str) -> dict[str, str]:
    """``engine.py``'s facts about the box and the versions (without pydub), plus ``extra``."""
    info = engine_machine_info(load_at_start)
    info.pop("pydub", None)
    return info | extra


def save(out: Console, directory: Path, writers: Mapping[str, Callable[[Path], object]]) -> None:
    """Each file of ``writers`` into ``directory``, by its writer; then where it went."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, write in writers.items():
        write(directory / name)
        if (directory / name).exists():  # a plot without matplotlib is not written
            out.print(f"wrote {directory / name}")


def write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n")


def write_report(
    path: Path,
    title: str,
    machine: Mapping[str, str],
    sections: Sequence[tuple[str, Sequence[str]]],
) -> None:
    """A markdown report: the title, the command line, then the sections, then the machine."""
    lines = report_head(title)
    machine_table = markdown_table(("", "value"), list(machine.items()))
    for heading, body in (*sections, ("Machine", machine_table)):
        lines += [f"## {heading}", "", *body, ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))


@contextmanager
def figure(
    path: Path, out: Console, *, columns: int = 2, size: tuple[float, float] = (13, 4.5)
) -> Iterator[Any]:
    """The axes of a row of ``columns`` plots, saved to ``path`` at the end; None without
    matplotlib (said on ``out``), in which case nothing is drawn."""
    plt = pyplot(out)
    if plt is None:
        yield None
        return
    drawing, axes = plt.subplots(1, columns, figsize=size)
    try:
        yield axes
        drawing.tight_layout()
        drawing.savefig(path, dpi=120)
    finally:
        plt.close(drawing)


def parser(doc: str, out: str, quick: str) -> argparse.ArgumentParser:
    """A benchmark's argument parser with what they all take: ``--out`` (default ``out``),
    ``--set`` (read by :func:`settings_of`) and ``--quick`` (helped by ``quick``)."""
    made = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    made.add_argument("--out", type=Path, default=Path(out), help=f"where the report goes ({out})")
    made.add_argument(
        "--set", action="append", default=[], metavar="WAVFORGE_NAME=VALUE",
        help="another setting for the server (repeatable)",
    )  # fmt: skip
    made.add_argument("--quick", action="store_true", help=f"smoke test: {quick}")
    return made


def settings_of(args: argparse.Namespace) -> dict[str, str]:
    return dict(item.split("=", 1) for item in args.set)


def main_of(run: Callable[[Console], object]) -> int:
    """Run a benchmark: exit 0 whatever its bars say (a report, not a test), 1 when a tool
    could not run, with what it said."""
    out = console()
    try:
        run(out)
    except ToolFailed as error:
        message = escape(str(error))
        out.print(f"[red]a tool failed to run, so there is nothing to report:[/] {message}")
        return 1
    return 0


def pyplot(out: Console | None = None) -> Any:
    """matplotlib's pyplot on the Agg backend, or None (said on ``out``) if it is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # no display needed; must precede the pyplot import
        import matplotlib.pyplot as plt
    except ImportError:
        if out:
            out.print("[yellow]matplotlib is not installed: no plot (pip install '.[bench]')[/]")
        return None
    return plt
