#!/usr/bin/env python3
"""Soak: thousands of short tasks through one embedded server with its worker; does its
memory stay flat, and does every task succeed and call back exactly once?

An embedded ``wavforge serve`` (SQLite, local files, worker in the process) gets ``--tasks``
short tracks (0.5-s MP3s) submitted steadily, about ``--window`` in flight at a time, each
with a callback to a receiver on loopback. Every second the benchmark samples the server
process and its converter children from ``/proc``: RSS, PSS, open file descriptors, threads.
Not run in CI: the default 10,000 tasks keep two cores busy for several minutes.

    python -m bench.soak --quick                 # smoke test: 300 tasks
    python -m bench.soak                         # 10,000 tasks
    python -m bench.soak --tasks 50000 --minutes 120
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.markup import escape

from bench.harness import (
    Receiver,
    TreeSampler,
    envelope,
    figure,
    import_tracks,
    machine_info,
    main_of,
    make_clip,
    markdown_table,
    rich_table,
    save,
    service,
    settings_of,
    write_report,
)
from bench.harness import parser as bench_parser

GROWTH_BAR = 0.10  # RSS growth after warm-up, less than
WARMUP_TASKS = 1000  # tasks completed before memory counts (10 % of the tasks if fewer)
SETTINGS = {
    # One key submits everything, as fast as tasks finish; the default 20/second would refuse
    # bursts after a batch of callbacks, and the benchmark is about memory, not the limit.
    "WAVFORGE_RATE_LIMIT": "1000/second",
}


@dataclass(frozen=True)
class Options:
    tasks: int
    minutes: float | None
    window: int
    warmup: int
    clip_seconds: float
    stall: float
    out: Path
    settings: dict[str, str]


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = bench_parser(__doc__, "bench/out/soak", "300 tasks")
    parser.add_argument("--tasks", type=int, help="tasks to run (10000)")
    parser.add_argument(
        "--minutes", type=float, help="stop submitting after this long, even short of --tasks"
    )
    parser.add_argument("--window", type=int, default=50, help="tasks in flight at once (50)")
    parser.add_argument(
        "--warmup", type=int, help=f"tasks before memory counts ({WARMUP_TASKS}, or 10 %% if fewer)"
    )
    parser.add_argument("--clip-seconds", type=float, default=0.5, help="track length (0.5)")
    parser.add_argument(
        "--stall",
        type=float,
        default=120,
        help="give up after this many seconds without a callback",
    )
    args = parser.parse_args(argv)
    tasks = args.tasks or (300 if args.quick else 10_000)
    options = Options(
        tasks=tasks,
        minutes=args.minutes,
        window=args.window,
        warmup=args.warmup if args.warmup is not None else min(WARMUP_TASKS, tasks // 10),
        clip_seconds=args.clip_seconds,
        stall=args.stall,
        out=args.out,
        settings=settings_of(args),
    )
    if min(options.tasks, options.window) < 1 or options.warmup >= options.tasks:
        parser.error("--tasks and --window must be at least 1, --warmup less than --tasks")
    if options.window > 90:
        parser.error("--window above 90 would run into WAVFORGE_MAX_UNFINISHED (100)")
    return options


# --- driving the tasks ------------------------------------------------------------------------


@dataclass
class Drive:
    """What happened to the submissions."""

    submitted: list[str] = field(default_factory=list)
    refused: Counter[str] = field(default_factory=Counter)  # retried: 405, 430
    rejected: Counter[str] = field(default_factory=Counter)  # not retried: anything else
    seconds: float = 0.0
    stalled: bool = False
    timed_out: bool = False


def drive(
    client: httpx.Client,
    tracks: list[str],
    receiver: Receiver,
    options: Options,
    state: Drive,
    out: Console,
) -> None:
    """Submit one track at a time while fewer than ``window`` are in flight, until every
    track is submitted (or ``--minutes`` is up) and every submitted task has called back;
    ``state`` says how it went (and the sampler reads it meanwhile)."""
    began = last_change = last_print = time.monotonic()
    deadline = began + options.minutes * 60 if options.minutes else None
    position, seen = 0, 0
    while True:
        now = time.monotonic()
        if receiver.tasks_seen != seen:
            seen, last_change = receiver.tasks_seen, now
        done_submitting = position >= len(tracks) or (deadline is not None and now >= deadline)
        state.timed_out = position < len(tracks) and done_submitting
        if done_submitting and seen >= len(state.submitted):
            break
        if now - last_change > options.stall:
            state.stalled = True
            break
        if now - last_print >= 10:
            last_print = now
            out.print(
                f"  {seen} done, {len(state.submitted) - seen} in flight, {now - began:.0f} s"
            )
        if not done_submitting and len(state.submitted) - seen < options.window:
            body = {"audioId": tracks[position], "callBackUrl": receiver.url}
            response = client.post("/api/v1/wav/generate", json=body)
            code = str(response.json().get("code", response.status_code))
            if code == "200":
                state.submitted.append(response.json()["data"]["taskId"])
                position += 1
            elif code in ("405", "430"):  # too many unfinished, too many requests: wait, retry
                state.refused[code] += 1
                time.sleep(0.5)
            else:
                state.rejected[code] += 1
                position += 1
            continue
        with receiver.arrived:
            receiver.arrived.wait(timeout=0.5)
    state.seconds = time.monotonic() - began


def final_statuses(client: httpx.Client) -> Counter[str]:
    """Every WAV task of the account by status, from the account's task listing."""
    statuses: Counter[str] = Counter()
    before = None
    while True:
        params: dict[str, Any] = {"limit": 200} | ({"before": before} if before else {})
        page = envelope(client.get("/api/v1/account/wav-tasks", params=params))
        statuses.update(task["status"] for task in page)
        if len(page) < 200:
            return statuses
        before = page[-1]["taskId"]


# --- judging ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """The medians of the first and last 10 % of the samples after warm-up."""

    first: dict[str, float]
    last: dict[str, float]
    samples: int  # in each window
    first_rows: tuple[int, int]  # indexes into the samples, for the plot
    last_rows: tuple[int, int]

    def growth(self, name: str) -> float:
        return self.last[name] / self.first[name] - 1 if self.first[name] else 0.0


MEASURES = (
    "server_rss_mb", "server_pss_mb", "children_rss_mb", "children_pss_mb", "total_rss_mb",
    "server_fds", "children_fds", "server_threads", "children_threads", "children_count",
)  # fmt: skip


def windows(rows: list[dict[str, Any]], warmup: int) -> Window | None:
    """None when fewer than two samples follow the warm-up."""
    after = [i for i, row in enumerate(rows) if row["tasks_done"] >= warmup]
    if len(after) < 2:
        return None
    size = max(1, len(after) // 10)
    first, last = after[:size], after[-size:]

    def medians(indexes: list[int]) -> dict[str, float]:
        return {
            name: statistics.median(float(rows[i][name] or 0) for i in indexes) for name in MEASURES
        }

    return Window(medians(first), medians(last), size, (first[0], first[-1]), (last[0], last[-1]))


def judge(
    options: Options,
    window: Window | None,
    drive_: Drive,
    receiver: Receiver,
    statuses: Counter[str],
) -> list[tuple[str, str, str]]:
    bars = []
    for name, label in (("server_rss_mb", "server RSS"), ("total_rss_mb", "server + children RSS")):
        claim = f"{label} grows < {GROWTH_BAR:.0%} after warm-up"
        if window is None:
            bars.append((claim, "too few samples after warm-up", "SKIP"))
            continue
        growth = window.growth(name)
        measured = f"{window.first[name]:.1f} → {window.last[name]:.1f} MB ({growth:+.1%})"
        bars.append((claim, measured, "PASS" if growth < GROWTH_BAR else "FAIL"))
    submitted = set(drive_.submitted)
    failed = [c for c in receiver.callbacks if not c.ok]
    succeeded = statuses.get("SUCCESS", 0)
    measured = f"{succeeded} of {len(submitted)} SUCCESS; {len(failed)} failure callbacks"
    if drive_.rejected:
        measured += f"; submits rejected: {dict(drive_.rejected)}"
    ok = succeeded == len(submitted) == options.tasks and not failed and not drive_.rejected
    bars.append((f"all {options.tasks} tasks succeed", measured, "PASS" if ok else "FAIL"))
    missing = len(submitted - receiver.by_task.keys())
    repeats = receiver.repeats()
    measured = (
        f"{missing} missing, {len(repeats)} more than once ({sum(repeats.values())} arrivals)"
    )
    once = missing == 0 and not repeats
    bars.append(("every task calls back exactly once", measured, "PASS" if once else "FAIL"))
    return bars


# --- the run and the report -------------------------------------------------------------------


def run(options: Options, out: Console) -> None:
    load_at_start = os.getloadavg()[0]
    options.out.mkdir(parents=True, exist_ok=True)
    receiver = Receiver()
    try:
        with tempfile.TemporaryDirectory(prefix="wavforge-soak-") as raw:
            scratch = Path(raw)
            clip = make_clip(scratch / "clip.mp3", options.clip_seconds).read_bytes()
            with service(scratch / "server", SETTINGS | options.settings, worker=True) as running:
                key = running.create_key("soak", credits=options.tasks)
                with running.client(key) as client:
                    began = time.perf_counter()
                    tracks = import_tracks(client, clip, options.tasks, parallel=4)
                    out.print(
                        f"imported {len(tracks)} tracks in {time.perf_counter() - began:.0f} s"
                    )
                    state = Drive()
                    sampler = TreeSampler(
                        running.pid,
                        extra=lambda: {
                            "tasks_done": receiver.tasks_seen,
                            "submitted": len(state.submitted),
                        },
                    ).start()
                    try:
                        drive(client, tracks, receiver, options, state, out)
                    finally:
                        sampler.stop()
                    time.sleep(2)  # a repeated callback would come now, not later
                    statuses = final_statuses(client)
    finally:
        receiver.close()
    save(out, options.out, {"samples.csv": sampler.write_csv})
    report(options, sampler.rows, state, receiver, statuses, machine_info(load_at_start), out)


def report(
    options: Options,
    rows: list[dict[str, Any]],
    state: Drive,
    receiver: Receiver,
    statuses: Counter[str],
    machine: dict[str, str],
    out: Console,
) -> None:
    window = windows(rows, options.warmup)
    bars = judge(options, window, state, receiver, statuses)
    done = receiver.tasks_seen
    facts = [
        ("tasks submitted", str(len(state.submitted))),
        ("callbacks (distinct tasks)", str(done)),
        ("wall time of the task phase", f"{state.seconds:.0f} s"),
        ("tasks per second", f"{done / state.seconds:.2f}" if state.seconds else ""),
        ("statuses at the end", ", ".join(f"{k} {v}" for k, v in sorted(statuses.items()))),
        (
            "submits refused and retried",
            ", ".join(f"{k}: {v}" for k, v in state.refused.items()) or "none",
        ),
        ("samples", f"{len(rows)}, one a second"),
    ]
    if state.stalled:
        facts.append(("stopped early", f"no callback for {options.stall:.0f} s"))
    if state.timed_out:
        facts.append(("stopped early", f"--minutes {options.minutes} was up"))
    trend_header = ("measure", "first 10 % (median)", "last 10 % (median)", "change")
    trend = []
    if window:
        for name in MEASURES:
            first, last = window.first[name], window.last[name]
            trend.append((name, f"{first:.1f}", f"{last:.1f}", f"{window.growth(name):+.1%}"))
    out.print()
    out.print(rich_table("Soak", ("", "value"), facts))
    if trend:
        out.print(rich_table(f"After warm-up ({options.warmup} tasks)", trend_header, trend))
    out.print(rich_table("Bars", ("bar", "measured", "verdict"), bars))
    for claim, measured, verdict in bars:
        if verdict == "FAIL":
            out.print(f"[bold red]FAIL: {escape(claim)}: {escape(measured)}[/]")
    sections = [
        ("Bars", markdown_table(("bar", "measured", "verdict"), bars)),
        ("The run", markdown_table(("", "value"), facts)),
        (
            "Memory, descriptors and threads after warm-up",
            [
                *(
                    markdown_table(trend_header, trend)
                    if trend
                    else ["Too few samples after warm-up."]
                ),
                "",
                "![RSS over tasks completed](soak.png)",
            ],
        ),
        ("How it was measured", how(options)),
    ]
    save(out, options.out, {
        "report.md": lambda path: write_report(path, "Soak", machine, sections),
        "soak.png": lambda path: plot(rows, window, options, path, out),
    })  # fmt: skip


def how(options: Options) -> list[str]:
    extra = ", ".join(f"`{k}={v}`" for k, v in options.settings.items())
    return [
        "- Server: `wavforge serve` with its embedded worker (SQLite, SQLite queue, local files) "
        "in a fresh data dir; `WAVFORGE_CALLBACK_ALLOW_PRIVATE=true` (the receiver is on "
        "loopback), `WAVFORGE_RATE_LIMIT=1000/second` (one key submits everything)"
        + (f", {extra}" if extra else "")
        + "; everything else at its default (2 worker threads, 100 unfinished tasks per account).",
        f"- Tasks: {options.tasks} copies of a {options.clip_seconds}-s 320 kb/s MP3, imported "
        f"first (20 a request); then submitted one by one with `POST /api/v1/wav/generate`, "
        f"at most {options.window} in flight, each with a callback to the loopback receiver "
        "(which answers 200).",
        "- Samples, once a second, from `/proc`: the server process (*server*: the API and the "
        "worker's threads) and every process below it (*children*: the converter processes, "
        "multiprocessing's resource tracker, any decoder helpers): RSS, PSS (`smaps_rollup`), "
        "open file descriptors and threads, summed per group. `samples.csv` has them all.",
        f"- Warm-up: the first {options.warmup} tasks completed (1,000, or 10 % of the tasks "
        "when fewer than 10,000 run). The bar compares the median of the first 10 % of the "
        "samples after warm-up with the median of the last 10 %.",
        "- Success: the callbacks' codes, then every task's status from the account's task "
        "listing; a callback counts once per task, and a task with two arrivals is a repeat.",
    ]


def plot(
    rows: list[dict[str, Any]], window: Window | None, options: Options, path: Path, out: Console
) -> None:
    """``soak.png``: memory, then descriptors and threads, over the tasks completed."""
    with figure(path, out) as axes:
        if axes is not None and rows:
            draw(rows, window, options, *axes)


def draw(
    rows: list[dict[str, Any]], window: Window | None, options: Options, memory: Any, counts: Any
) -> None:
    done = [row["tasks_done"] for row in rows]
    for name, color in (("server", "#dd8452"), ("children", "#4c72b0"), ("total", "#55a868")):
        memory.plot(done, [row[f"{name}_rss_mb"] for row in rows], color=color, label=f"{name} RSS")
        if name != "total" and all(row[f"{name}_pss_mb"] != "" for row in rows):
            pss = [row[f"{name}_pss_mb"] for row in rows]
            memory.plot(done, pss, color=color, linestyle=":", label=f"{name} PSS")
    for axes in (memory, counts):
        axes.axvspan(0, options.warmup, color="grey", alpha=0.1, label="warm-up")
        if window:
            for first, last in (window.first_rows, window.last_rows):
                axes.axvspan(done[first], done[last], color="#c44e52", alpha=0.1)
        axes.set_xlabel("tasks completed")
    memory.set_ylabel("MB")
    memory.set_ylim(bottom=0)
    memory.set_title("Memory (red bands: the windows compared)")
    memory.legend(fontsize=8)
    for name, style in (("fds", "-"), ("threads", "--")):
        for group, color in (("server", "#dd8452"), ("children", "#4c72b0")):
            counts.plot(
                done,
                [row[f"{group}_{name}"] for row in rows],
                color=color,
                linestyle=style,
                label=f"{group} {name}",
            )
    counts.set_title("Open file descriptors and threads")
    counts.set_ylim(bottom=0)
    counts.legend(fontsize=8)


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    return main_of(lambda out: run(options, out))


if __name__ == "__main__":
    raise SystemExit(main())
