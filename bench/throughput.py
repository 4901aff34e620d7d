#!/usr/bin/env python3
"""Service throughput: conversions per second through the whole service, against the engine
alone and against ffmpeg, on the same cores.

Two references, each what the same cores do without the service: the engine alone (N Python
processes, each converting its share of the files in-process with ``wavforge.audio.convert``,
the service's limits and loudness setting, the WAVs kept) and a shell script's N ``ffmpeg``
processes side by side. wavforge gets the same files as tracks and converts them as a client
would see it: from the first submission to the moment every task is SUCCESS (callbacks
included, to a receiver on loopback). Its workers are ``wavforge worker`` processes beside an
API-only ``wavforge serve``; the benchmark runs 1 and 2 of them, with the settings' defaults
(the worker sizes itself from the cores it may use) unless ``--set`` says otherwise.

``--cores 1,2`` pins everything measured to the first 1, then 2, of the cores this benchmark
may use (``os.sched_setaffinity``; every wavforge process and what it starts inherits them),
and N is that count; the benchmark's own client and callback receiver run on the other cores
when there are any. By default N is every core it may use.

Modes: ``embedded`` (SQLite, SQLite queue, local files); ``scaleout-disk`` (PostgreSQL and
Redis, files in one local directory all processes share, as on an NFS mount); and
``scaleout`` (PostgreSQL, Redis, and S3 emulated by moto's standalone server on this same
machine — the emulator's CPU is counted against wavforge, which real S3's would not be).
PostgreSQL, Redis and the emulator are not pinned. The rounds alternate the references and
each configuration so drift on a shared machine hits all alike; medians are reported.

    python -m bench.throughput                      # every mode, 1 and 2 workers, all cores
    python -m bench.throughput --modes embedded --workers 1 --cores 1,2 --rounds 5
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from bench.engine import ensure_input, git_revision
from bench.harness import Receiver, ToolFailed, figure, import_tracks, service

# The deployments the test suite runs in: fresh PostgreSQL databases, Redis queue names and
# moto buckets (WAVFORGE_TEST_POSTGRES and WAVFORGE_TEST_REDIS point elsewhere).
from tests.support.deployments import Modes, S3Emulator

BAR_ENGINE = 0.97  # wavforge conversions/s ÷ the engine alone on the same cores, at least
BAR_FFMPEG = 0.85  # ÷ the faster of the two parallel-ffmpeg rows, at least


@dataclass(frozen=True)
class Options:
    files: int
    minutes: int
    rounds: int
    modes: tuple[str, ...]
    workers: tuple[int, ...]
    cores: tuple[int, ...]
    out: Path
    settings: dict[str, str]


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=16, help="conversions per round")
    parser.add_argument("--minutes", type=int, default=3, help="length of each track")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--modes", default="embedded,scaleout-disk,scaleout")
    parser.add_argument("--workers", default="1,2", help="worker processes to try")
    parser.add_argument(
        "--cores", default="",
        help="pin to the first N cores, for each N given (e.g. 1,2); default: every core",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=Path("bench/out/throughput"))
    parser.add_argument(
        "--set", action="append", default=[], metavar="WAVFORGE_NAME=VALUE",
        help="a setting for every wavforge process, the engine alone's included (repeatable)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    available = len(os.sched_getaffinity(0))
    cores = tuple(int(n) for n in args.cores.split(",") if n) or (available,)
    if not all(1 <= n <= available for n in cores):
        parser.error(f"--cores: this process may use {available} cores")
    return Options(
        files=args.files,
        minutes=args.minutes,
        rounds=args.rounds,
        modes=tuple(args.modes.split(",")),
        workers=tuple(int(n) for n in args.workers.split(",")),
        cores=cores,
        out=args.out,
        settings=dict(item.split("=", 1) for item in args.set),
    )


# --- pinning ----------------------------------------------------------------------------------


@contextmanager
def pinned(cpus: set[int]) -> Iterator[None]:
    """This thread on ``cpus`` for the block: the threads and processes it starts meanwhile
    inherit them (and the processes' own children after them)."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def cores_text(count: int) -> str:
    return f"{count} core{'s' if count > 1 else ''}"


# --- the references ---------------------------------------------------------------------------


def ffmpeg_label(lanes: int, *, keep: bool) -> str:
    return f"ffmpeg x{lanes}, WAVs {'kept' if keep else 'deleted at once'}"


def engine_label(lanes: int) -> str:
    return f"engine alone x{lanes}"


def ffmpeg_rate(source: Path, files: int, scratch: Path, lanes: int, *, keep: bool) -> float:
    """``lanes`` ffmpeg processes at a time, each converting its share of the files one by one.

    Kept, the WAVs stay until the run ends, as wavforge's do. Deleted at once, they never
    reach the disk, which spares ffmpeg the writeback a service's files cost; the bar is
    taken against the faster of the two, so wavforge is never flattered by the choice.
    """
    out = scratch / "ffmpeg"
    out.mkdir()

    def lane(first: int) -> None:
        for number in range(first, files, lanes):
            target = out / f"{number}.wav"
            subprocess.run(
                ["ffmpeg", "-v", "error", "-y", "-i", str(source), str(target)], check=True
            )
            if not keep:
                target.unlink()

    began = time.perf_counter()
    threads = [threading.Thread(target=lane, args=(first,)) for first in range(lanes)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rate = files / (time.perf_counter() - began)
    shutil.rmtree(out)
    return rate


# One process of the engine alone: pinned, imports done and one conversion made before it
# says "ready"; then, told to go, its share of the files with the service's limits and
# loudness setting (from the same WAVFORGE_* environment) and the checksum on, as the
# worker's converter child runs them. One decoder per file: with a process per core every
# core is busy, so splitting a file would only add work (the service does not split either
# while its other converters are busy).
ENGINE_ALONE = """\
import os, sys
os.sched_setaffinity(0, {int(cpu) for cpu in sys.argv[1].split(",")})
import dataclasses
from pathlib import Path
from wavforge import audio
from wavforge.config import Settings

source, out = Path(sys.argv[2]), Path(sys.argv[3])
numbers = [int(number) for number in sys.argv[4].split(",") if number]
settings = Settings()
limits = dataclasses.replace(settings.audio_limits(), parallelism=1)
loudness = settings.measure_loudness
warm = out / f"warm-{os.getpid()}.wav"
audio.convert(source, warm, limits=limits, loudness=loudness)
warm.unlink()
print("ready", flush=True)
sys.stdin.readline()
for number in numbers:
    audio.convert(source, out / f"{number}.wav", limits=limits, loudness=loudness)
print("done", flush=True)
"""
# As the service's converter child sets them before numpy loads (see wavforge.audio.isolation).
SINGLE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def engine_rate(
    source: Path, files: int, scratch: Path, cpus: set[int], settings: dict[str, str]
) -> float:
    """One process per core of ``cpus``, each pinned to them and converting its share of the
    files in-process; timed from "go" (every process warm) to the last one done. The WAVs
    are kept until the end, as the service keeps its files."""
    out = scratch / "engine"
    out.mkdir()
    lanes = len(cpus)
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("WAVFORGE_")}
    env = inherited | settings | SINGLE_THREAD  # as harness.Service gives the service
    cpu_list = ",".join(map(str, sorted(cpus)))
    processes = []
    for first in range(lanes):
        numbers = ",".join(map(str, range(first, files, lanes)))
        argv = [sys.executable, "-c", ENGINE_ALONE, cpu_list, str(source), str(out), numbers]
        with (scratch / f"engine-{first}.log").open("w") as log:
            pipes = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE, "stderr": log}
            processes.append(subprocess.Popen(argv, env=env, text=True, **pipes))
    try:
        for process in processes:
            expect(process, "ready", scratch)
        began = time.perf_counter()
        for process in processes:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        for process in processes:
            expect(process, "done", scratch)
        rate = files / (time.perf_counter() - began)
    finally:
        for process in processes:
            if process.poll() is None and process.stdin is not None:
                process.stdin.close()
            process.wait()
    shutil.rmtree(out)
    return rate


def expect(process: subprocess.Popen[str], word: str, scratch: Path) -> None:
    assert process.stdout is not None
    if process.stdout.readline().strip() != word:
        process.wait()
        logs = "\n".join(path.read_text() for path in sorted(scratch.glob("engine-*.log")))
        raise ToolFailed(f"the engine alone exited with {process.returncode}:\n{logs}")


# --- a wavforge deployment --------------------------------------------------------------------

# Every wavforge process: free conversions, and limits that never interfere.
SETTINGS = {
    "WAVFORGE_RATE_LIMIT": "100000/second",
    "WAVFORGE_MAX_UNFINISHED": "100000",
    "WAVFORGE_WAV_COST": "0",
}


def backends_for(mode: str, modes: Modes | None, root: Path) -> dict[str, str]:
    """The settings of a fresh deployment: a new database, queue name and bucket (the test
    suite's own ``deployments`` module makes them, and drops the databases at the end)."""
    if mode == "embedded":
        return {}
    assert modes is not None
    return dict(modes.deployment(root / "files" if mode == "scaleout-disk" else None).env)


@contextmanager
def deployment(
    root: Path, backends: dict[str, str], workers: int, cpus: set[int]
) -> Iterator[httpx.Client]:
    """An API-only server and ``workers`` worker processes (``harness.service``), all pinned
    to ``cpus``, and a client with a fresh key."""
    with ExitStack() as stack:
        with pinned(cpus):
            running = stack.enter_context(
                service(root, SETTINGS | backends, worker=False, workers=workers)
            )
        yield stack.enter_context(running.client(running.create_key("bench")))


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
    receiver.wait_for_tasks(task_ids, timeout=600)
    return len(tracks) / (time.perf_counter() - began)


def settled(client: httpx.Client, tracks: list[str], timeout: float = 600) -> None:
    """Wait until the imports' own background work (each source's waveform peaks) is done, so
    the clock times conversions alone, as it does for ffmpeg and the engine."""
    deadline = time.monotonic() + timeout
    for track in tracks:
        while client.get(f"/api/v1/account/tracks/{track}/peaks").status_code != 200:
            if time.monotonic() > deadline:
                raise TimeoutError("the sources' peaks were not measured in time")
            time.sleep(0.1)


def warm_up(client: httpx.Client, source: Path, workers: int, receiver: Receiver) -> list[str]:
    """One conversion per worker first: converter children started, caches warm; the tracks."""
    tracks = import_tracks(client, source.read_bytes(), workers, parallel=4)
    wavforge_rate(client, tracks, receiver)
    return tracks


# --- the run ----------------------------------------------------------------------------------

Rates = dict[int, dict[str, list[float]]]  # cores -> configuration -> conversions/s per round


def run(options: Options, console: Console) -> Rates:
    source = ensure_input(Path("bench/out/inputs"), options.minutes, console)
    available = sorted(os.sched_getaffinity(0))
    rates: Rates = {
        n: {engine_label(n): [], ffmpeg_label(n, keep=False): [], ffmpeg_label(n, keep=True): []}
        for n in options.cores
    }
    # The benchmark's own threads (client, callback receiver) on cores nothing measured uses,
    # when there are any: the threads started from here on inherit this.
    spare = set(available[max(options.cores) :])
    if spare:
        os.sched_setaffinity(0, spare)
    receiver = Receiver()
    with tempfile.TemporaryDirectory(prefix="wavforge-throughput-") as raw:
        scratch = Path(raw)
        scaleout = any(mode.startswith("scaleout") for mode in options.modes)
        # The emulator only runs when the bucket is measured: idle, it still holds memory.
        s3 = S3Emulator(scratch / "moto.log") if "scaleout" in options.modes else None
        modes = Modes("scaleout", s3) if scaleout else None
        try:
            for round_number in range(options.rounds):
                for n in options.cores:
                    bench = Round(options, source, scratch, set(available[:n]), receiver, modes)
                    for label, rate in bench.measure():
                        rates[n].setdefault(label, []).append(rate)
                        shown = f"round {round_number + 1}, {cores_text(n)}: {label} {rate:.2f}/s"
                        console.print(shown)
        finally:
            receiver.close()
            if modes:
                modes.close()
            if s3:
                s3.stop()
    return rates


@dataclass(frozen=True)
class Round:
    """One round on ``cpus``: the references, then each mode and worker count."""

    options: Options
    source: Path
    scratch: Path
    cpus: set[int]
    receiver: Receiver
    modes: Modes | None

    def measure(self) -> Iterator[tuple[str, float]]:
        files, lanes = self.options.files, len(self.cpus)
        with pinned(self.cpus):
            rate = engine_rate(self.source, files, self.scratch, self.cpus, self.options.settings)
        yield engine_label(lanes), rate
        for keep in (False, True):
            with pinned(self.cpus):
                rate = ffmpeg_rate(self.source, files, self.scratch, lanes, keep=keep)
            yield ffmpeg_label(lanes, keep=keep), rate
        for mode in self.options.modes:
            for workers in self.options.workers:
                label = f"{mode}, {workers} worker{'s' if workers > 1 else ''}"
                yield label, self.wavforge(mode, workers)

    def wavforge(self, mode: str, workers: int) -> float:
        root = self.scratch / f"{mode}-{workers}-{len(self.cpus)}"
        root.mkdir()
        backends = backends_for(mode, self.modes, root) | self.options.settings
        with deployment(root, backends, workers, self.cpus) as client:
            warm = warm_up(client, self.source, workers, self.receiver)
            tracks = import_tracks(client, self.source.read_bytes(), self.options.files, parallel=4)
            if backends.get("WAVFORGE_MEASURE_SOURCE_PEAKS", "true").lower() != "false":
                settled(client, [*warm, *tracks])
            rate = wavforge_rate(client, tracks, self.receiver)
        # Gigabytes of WAVs per configuration: left behind, their writeback would slow
        # whatever runs next.
        shutil.rmtree(root)
        return rate


@dataclass(frozen=True)
class Row:
    cores: int
    label: str
    values: list[float]
    engine: float  # the median of the engine alone on the same cores
    ffmpeg: float  # the median of the faster ffmpeg row on the same cores

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def reference(self) -> bool:
        return self.label.startswith(("ffmpeg", "engine"))

    @property
    def verdict(self) -> str:
        if self.reference:
            return "reference"
        missed = [
            name
            for name, ratio, bar in (
                ("engine", self.median / self.engine, BAR_ENGINE),
                ("ffmpeg", self.median / self.ffmpeg, BAR_FFMPEG),
            )
            if ratio < bar
        ]
        return f"MISS ({', '.join(missed)})" if missed else "PASS"

    def cells(self) -> tuple[str, ...]:
        return (
            str(self.cores),
            self.label,
            f"{self.median:.2f}",
            ", ".join(f"{v:.2f}" for v in self.values),
            f"{self.median / self.engine:.0%}",
            f"{self.median / self.ffmpeg:.0%}",
            self.verdict,
        )


def rows_of(rates: Rates) -> list[Row]:
    rows = []
    for cores, configurations in rates.items():
        engine = statistics.median(configurations[engine_label(cores)])
        ffmpeg = max(
            statistics.median(configurations[ffmpeg_label(cores, keep=keep)])
            for keep in (False, True)
        )
        rows += [
            Row(cores, label, values, engine, ffmpeg) for label, values in configurations.items()
        ]
    return rows


COLUMNS = (
    "cores", "configuration", "median conv/s", "rounds", "vs engine alone",
    "vs faster ffmpeg", "bar",
)  # fmt: skip


def report(options: Options, rates: Rates, console: Console) -> None:
    rows = rows_of(rates)
    title = f"{options.files} conversions of a {options.minutes}-min MP3 per round"
    table = Table(title=title)
    for column in COLUMNS:
        table.add_column(column)
    threads = options.settings.get("WAVFORGE_WORKER_THREADS", "default (two per core)")
    lines = [
        f"# Service throughput ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {git_revision()})",
        "",
        f"{options.files} conversions of a {options.minutes}-min 320 kb/s MP3 per round, "
        f"{options.rounds} rounds, pinned to {', '.join(map(str, options.cores))} of the "
        f"{len(os.sched_getaffinity(0))} cores this benchmark may use ({os.cpu_count()} "
        f"CPUs in the machine). Worker threads: {threads}. "
        f"Settings given: {options.settings or 'none'}.",
        "",
        f"Bar: on the same cores, ≥ {BAR_ENGINE:.0%} of the engine alone and ≥ "
        f"{BAR_FFMPEG:.0%} of the faster ffmpeg row.",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|---:|---|---:|---|---:|---:|---|",
    ]
    for row in rows:
        table.add_row(*row.cells())
        lines.append("| " + " | ".join(row.cells()) + " |")
    console.print(table)
    options.out.mkdir(parents=True, exist_ok=True)
    (options.out / "report.md").write_text("\n".join(lines) + "\n")
    by_cores = {cores_text(cores): configurations for cores, configurations in rates.items()}
    (options.out / "rates.json").write_text(json.dumps(by_cores, indent=2))
    plot(rows, options.out / "throughput.png", console)
    console.print(f"report: {options.out / 'report.md'}")


def plot(rows: list[Row], path: Path, console: Console) -> None:
    """Each wavforge row as a share of each reference on its cores, with the two bars."""
    measured = [row for row in rows if not row.reference]
    with figure(path, console, columns=1, size=(8, 1.2 + 0.6 * len(measured))) as axes:
        if axes is None:
            return
        labels = [f"{cores_text(row.cores)}: {row.label}" for row in measured]
        places = range(len(measured))
        of_engine = [row.median / row.engine for row in measured]
        of_ffmpeg = [row.median / row.ffmpeg for row in measured]
        axes.barh([y - 0.2 for y in places], of_engine, 0.4, color="#dd8452",
                  label="÷ engine alone")  # fmt: skip
        axes.barh([y + 0.2 for y in places], of_ffmpeg, 0.4, color="#8172b3",
                  label="÷ faster ffmpeg")  # fmt: skip
        axes.axvline(BAR_ENGINE, color="#dd8452", linestyle="--")
        axes.axvline(BAR_FFMPEG, color="#8172b3", linestyle="--")
        axes.set_yticks(list(places), labels)
        axes.set_xlabel("conversions per second, as a share of the reference (medians)")
        axes.invert_yaxis()
        axes.legend(loc="best")


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    console = Console()
    report(options, run(options, console), console)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
