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
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]
from engine import ensure_input, git_revision  # noqa: E402
from harness import Receiver, figure, import_tracks, service  # noqa: E402

# The deployments the test suite runs in: fresh PostgreSQL databases, Redis queue names and
# moto buckets (WAVFORGE_TEST_POSTGRES and WAVFORGE_TEST_REDIS point elsewhere).
from deployments import Modes, S3Emulator  # noqa: E402

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
def deployment(root: Path, backends: dict[str, str], workers: int) -> Iterator[httpx.Client]:
    """An API-only server and ``workers`` worker processes (``harness.service``), and a
    client with a fresh key."""
    with (
        service(root, SETTINGS | backends, worker=False, workers=workers) as running,
        running.client(running.create_key("bench")) as client,
    ):
        yield client


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
    receiver.wait_for(task_ids, timeout=600)
    return len(tracks) / (time.perf_counter() - began)


def warm_up(client: httpx.Client, source: Path, workers: int, receiver: Receiver) -> None:
    """One conversion per worker first: converter children started, caches warm."""
    wavforge_rate(client, import_tracks(client, source.read_bytes(), workers), receiver)


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
                        with deployment(root, backends, workers) as client:
                            warm_up(client, source, workers, receiver)
                            tracks = import_tracks(client, source.read_bytes(), options.files)
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
    plot(rates, reference, options.out / "throughput.png", console)
    console.print(f"report: {options.out / 'report.md'}")


def plot(rates: dict[str, list[float]], reference: float, path: Path, console: Console) -> None:
    with figure(path, console, columns=1, size=(8, 3.5)) as axes:
        if axes is None:
            return
        labels = list(rates)
        medians = [statistics.median(rates[label]) for label in labels]
        axes.barh(labels, medians, color="#dd8452")
        label = f"{BAR:.0%} of ffmpeg x2"
        axes.axvline(reference * BAR, color="#4c72b0", linestyle="--", label=label)
        axes.set_xlabel("conversions per second (median)")
        axes.invert_yaxis()
        axes.legend(loc="lower right")


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    console = Console()
    report(options, run(options, console), console)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
