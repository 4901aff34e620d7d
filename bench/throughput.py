#!/usr/bin/env python3
"""Service throughput: conversions per second through the whole service, against ffmpeg.

The reference is what a shell script would do with the same machine: two ``ffmpeg`` processes
side by side, each converting half of the files. wavforge gets the same files as tracks and
converts them as a client would see it: from the first submission to the moment every task is
SUCCESS (callbacks included, to a receiver on loopback). Its workers are ``wavforge worker``
processes beside an API-only ``wavforge serve``; the benchmark runs 1 and 2 of them.

Modes: ``embedded`` (SQLite, SQLite queue, local files); ``scaleout-disk`` (PostgreSQL and
Redis, files in one local directory all processes share, as on an NFS mount); and
``scaleout`` (PostgreSQL, Redis, and S3 emulated by moto's standalone server on this same
machine — the emulator's CPU is counted against wavforge, which real S3's would not be).
The rounds alternate ffmpeg and each configuration so drift on a shared machine hits all
alike; medians are reported.

    python bench/throughput.py                      # both modes, 1 and 2 workers
    python bench/throughput.py --modes embedded --rounds 5
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]
# The deployments the test suite runs in: fresh PostgreSQL databases, Redis queue names and
# moto buckets (WAVFORGE_TEST_POSTGRES and WAVFORGE_TEST_REDIS point elsewhere).
from engine import ensure_input, git_revision, wavforge_command  # noqa: E402

from deployments import Modes, S3Emulator, free_port  # noqa: E402

BAR = 0.85  # wavforge conversions/s ÷ two parallel ffmpeg processes, at least


@dataclass(frozen=True)
class Options:
    files: int
    minutes: int
    rounds: int
    modes: tuple[str, ...]
    workers: tuple[int, ...]
    out: Path
    settings: dict[str, str]


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=16, help="conversions per round")
    parser.add_argument("--minutes", type=int, default=3, help="length of each track")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--modes", default="embedded,scaleout-disk,scaleout")
    parser.add_argument("--workers", default="1,2", help="worker processes to try")
    parser.add_argument("--out", type=Path, default=Path("bench/out/throughput"))
    parser.add_argument(
        "--set", action="append", default=[], metavar="WAVFORGE_NAME=VALUE",
        help="a setting for every wavforge process (repeatable)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    return Options(
        files=args.files,
        minutes=args.minutes,
        rounds=args.rounds,
        modes=tuple(args.modes.split(",")),
        workers=tuple(int(n) for n in args.workers.split(",")),
        out=args.out,
        settings=dict(item.split("=", 1) for item in args.set),
    )


# --- the reference ----------------------------------------------------------------------------


FFMPEG_KEPT = "ffmpeg x2, WAVs kept"
FFMPEG_DELETED = "ffmpeg x2, WAVs deleted at once"


def ffmpeg_rate(source: Path, files: int, scratch: Path, *, keep: bool) -> float:
    """Two ffmpeg processes at a time, each converting its half of the files one by one.

    Kept, the WAVs stay until the run ends, as wavforge's do. Deleted at once, they never
    reach the disk, which spares ffmpeg the writeback a service's files cost; the bar is
    taken against the faster of the two, so wavforge is never flattered by the choice.
    """
    out = scratch / "ffmpeg"
    out.mkdir()

    def half(lane: int) -> None:
        for number in range(lane, files, 2):
            target = out / f"{number}.wav"
            subprocess.run(
                ["ffmpeg", "-v", "error", "-y", "-i", str(source), str(target)], check=True
            )
            if not keep:
                target.unlink()

    began = time.perf_counter()
    lanes = [threading.Thread(target=half, args=(lane,)) for lane in (0, 1)]
    for lane in lanes:
        lane.start()
    for lane in lanes:
        lane.join()
    rate = files / (time.perf_counter() - began)
    shutil.rmtree(out)
    return rate


# --- a wavforge deployment --------------------------------------------------------------------


class Receiver:
    """Answers every callback with 200, as a healthy client would, and notes which tasks
    have finished, so the benchmark learns of completion without polling the API."""

    def __init__(self) -> None:
        self.finished: set[str] = set()
        self.arrived = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", "0"))))
                with receiver.arrived:
                    if body["code"] != 200:
                        raise RuntimeError(f"a conversion failed: {body['msg']}")
                    receiver.finished.add(body["data"]["task_id"])
                    receiver.arrived.notify_all()
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return None

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._http.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}/callback"

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()


def _answers(url: str) -> bool:
    try:
        httpx.get(url, timeout=1)
    except httpx.HTTPError:
        return False
    return True


def wait_for(predicate: object, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not come up")


def backends_for(mode: str, modes: Modes | None, root: Path) -> dict[str, str]:
    """The settings of a fresh deployment: a new database, queue name and bucket (the test
    suite's own ``deployments`` module makes them, and drops the databases at the end)."""
    if mode == "embedded":
        return {}
    assert modes is not None
    return dict(modes.deployment(root / "files" if mode == "scaleout-disk" else None).env)


@contextmanager
def deployment(
    root: Path, backends: dict[str, str], workers: int
) -> Iterator[tuple[httpx.Client, dict[str, str]]]:
    """An API-only server and ``workers`` worker processes, each with its own data dir."""
    port = free_port()
    base = {k: v for k, v in os.environ.items() if not k.startswith("WAVFORGE_")}
    base |= backends | {
        "WAVFORGE_PORT": str(port),
        "WAVFORGE_CALLBACK_ALLOW_PRIVATE": "true",
        "WAVFORGE_RATE_LIMIT": "100000/second",
        "WAVFORGE_MAX_UNFINISHED": "100000",
        "WAVFORGE_WAV_COST": "0",
    }
    if "WAVFORGE_DATABASE_URL" not in backends:  # embedded: every process shares one data dir
        base["WAVFORGE_DATA_DIR"] = str(root / "shared")
    processes: list[subprocess.Popen[bytes]] = []

    def start(name: str, *args: str) -> None:
        env = base | (
            {} if "WAVFORGE_DATA_DIR" in base else {"WAVFORGE_DATA_DIR": str(root / name)}
        )
        with (root / f"{name}.log").open("ab") as log:
            processes.append(
                subprocess.Popen([*wavforge_command(), *args], env=env, stdout=log, stderr=log)
            )

    try:
        start("api", "serve", "--no-worker")
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: _answers(f"{url}/healthz"), "the API")
        env = base | {"WAVFORGE_DATA_DIR": base.get("WAVFORGE_DATA_DIR", str(root / "api"))}
        created = subprocess.run(
            [*wavforge_command(), "keys", "create", "--name", "bench", "--json"],
            env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        key = json.loads(created.stdout)["key"]
        for number in range(workers):
            start(f"worker{number}", "worker")
        with httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60
        ) as client:
            yield client, env
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(timeout=120)


def import_tracks(client: httpx.Client, source: Path, count: int) -> list[str]:
    data = source.read_bytes()
    ids: list[str] = []
    while len(ids) < count:
        batch = min(20, count - len(ids))
        files = [("file", (f"t{i}.mp3", data)) for i in range(batch)]
        response = client.post("/api/v1/music/import", files=files)
        response.raise_for_status()
        ids += [track["id"] for track in response.json()["data"]["tracks"]]
    return ids


def wavforge_rate(client: httpx.Client, tracks: list[str], receiver: Receiver) -> float:
    """Submit every track at once; the clock stops when the last task's callback arrives."""

    def submit(track: str) -> str:
        body = {"audioId": track, "callBackUrl": receiver.url}
        response = client.post("/api/v1/wav/generate", json=body)
        response.raise_for_status()
        return str(response.json()["data"]["taskId"])

    began = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        task_ids = set(pool.map(submit, tracks))
    with receiver.arrived:
        if not receiver.arrived.wait_for(lambda: task_ids <= receiver.finished, timeout=600):
            raise RuntimeError("conversions did not finish in 10 minutes")
    return len(tracks) / (time.perf_counter() - began)


def warm_up(client: httpx.Client, source: Path, workers: int, receiver: Receiver) -> None:
    """One conversion per worker first: converter children started, caches warm."""
    wavforge_rate(client, import_tracks(client, source, workers), receiver)


# --- the run ----------------------------------------------------------------------------------


def run(options: Options, console: Console) -> dict[str, list[float]]:
    source = ensure_input(Path("bench/out/inputs"), options.minutes, console)
    rates: dict[str, list[float]] = {FFMPEG_DELETED: [], FFMPEG_KEPT: []}
    receiver = Receiver()
    with tempfile.TemporaryDirectory(prefix="wavforge-throughput-") as raw:
        scratch = Path(raw)
        scaleout = any(mode.startswith("scaleout") for mode in options.modes)
        # The emulator only runs when the bucket is measured: idle, it still holds memory.
        s3 = S3Emulator(scratch / "moto.log") if "scaleout" in options.modes else None
        modes = Modes("scaleout", s3) if scaleout else None
        try:
            for round_number in range(options.rounds):
                for label, keep in ((FFMPEG_DELETED, False), (FFMPEG_KEPT, True)):
                    rate = ffmpeg_rate(source, options.files, scratch, keep=keep)
                    rates[label].append(rate)
                    console.print(f"round {round_number + 1}: {label} {rate:.2f}/s")
                for mode in options.modes:
                    for workers in options.workers:
                        label = f"{mode}, {workers} worker{'s' if workers > 1 else ''}"
                        root = scratch / f"{mode}-{workers}-{round_number}"
                        root.mkdir()
                        backends = backends_for(mode, modes, root) | options.settings
                        with deployment(root, backends, workers) as (client, _):
                            warm_up(client, source, workers, receiver)
                            tracks = import_tracks(client, source, options.files)
                            rate = wavforge_rate(client, tracks, receiver)
                        # Gigabytes of WAVs per configuration: left behind, their writeback
                        # would slow whatever runs next.
                        shutil.rmtree(root)
                        rates.setdefault(label, []).append(rate)
                        console.print(f"round {round_number + 1}: {label} {rate:.2f}/s")
        finally:
            receiver.close()
            if modes:
                modes.close()
            if s3:
                s3.stop()
    return rates


def report(options: Options, rates: dict[str, list[float]], console: Console) -> None:
    reference = max(statistics.median(rates[label]) for label in (FFMPEG_DELETED, FFMPEG_KEPT))
    table = Table(title=f"{options.files} conversions of a {options.minutes}-min MP3 per round")
    for column in ("configuration", "median conv/s", "rounds", "vs faster ffmpeg x2", "bar"):
        table.add_column(column)
    lines = [
        f"# Service throughput ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {git_revision()})",
        "",
        f"{options.files} conversions of a {options.minutes}-min 320 kb/s MP3 per round, "
        f"{options.rounds} rounds, {os.cpu_count()} CPUs. "
        f"Bar: ≥ {BAR:.0%} of the faster ffmpeg x2 row.",
        "",
        "| configuration | median conv/s | rounds | vs faster ffmpeg x2 | bar |",
        "|---|---:|---|---:|---|",
    ]
    for label, values in rates.items():
        median = statistics.median(values)
        ratio = median / reference
        verdict = (
            "reference" if label.startswith("ffmpeg") else ("PASS" if ratio >= BAR else "MISS")
        )
        cells = (
            label,
            f"{median:.2f}",
            ", ".join(f"{v:.2f}" for v in values),
            f"{ratio:.0%}",
            verdict,
        )
        table.add_row(*cells)
        lines.append("| " + " | ".join(cells) + " |")
    console.print(table)
    options.out.mkdir(parents=True, exist_ok=True)
    (options.out / "report.md").write_text("\n".join(lines) + "\n")
    (options.out / "rates.json").write_text(json.dumps(rates, indent=2))
    plot(rates, reference, options.out / "throughput.png")
    console.print(f"report: {options.out / 'report.md'}")


def plot(rates: dict[str, list[float]], reference: float, path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    labels = list(rates)
    figure, axes = plt.subplots(figsize=(8, 3.5))
    axes.barh(labels, [statistics.median(rates[label]) for label in labels], color="#dd8452")
    axes.axvline(reference * BAR, color="#4c72b0", linestyle="--", label=f"{BAR:.0%} of ffmpeg x2")
    axes.set_xlabel("conversions per second (median)")
    axes.invert_yaxis()
    axes.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    console = Console()
    report(options, run(options, console), console)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
