#!/usr/bin/env python3
"""API load: submit and record-info requests per second and their latency, under wrk.

wrk drives an embedded ``wavforge serve`` on loopback with many keys at a few connection
counts; ``GET /healthz`` under the same load, in the same run, is the reference (what the web
stack answers when the handler does next to nothing), so the figures also read as ratios.
Every submit is for a track never submitted before (a second submit of a track answers 409),
so the run imports enough tracks first. The server runs ``--no-worker`` unless
``--with-worker``: conversions would otherwise compete with the API for the same cores.

    python -m bench.load --quick                  # smoke test: a few seconds a row
    python -m bench.load                          # 16, 32, 64 connections; 1 and 2 API processes
    python -m bench.load --api-processes 2 --connections 64 --duration 30 --with-worker

``bench/README.md`` explains how to read what it writes under ``bench/out/load/``.
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from bench.harness import (
    Key,
    Receiver,
    Service,
    ToolFailed,
    cpu_seconds,
    envelope,
    figure,
    import_tracks,
    listening_processes,
    machine_info,
    main_of,
    make_clip,
    markdown_table,
    rich_table,
    save,
    service,
    settings_of,
    write_json,
    write_report,
)
from bench.harness import parser as bench_parser

SUBMIT_RATE_BAR = 1000.0  # submits per second, at least
SUBMIT_P99_BAR_MS = 50.0  # submit latency, 99th percentile, at most
RECORD_RATE_BAR = 3000.0  # record-info reads per second, at least
# Tracks submitted per account in a submit row: under the default quota of 100 unfinished
# tasks per account (WAVFORGE_MAX_UNFINISHED), which the server keeps.
PER_SUBMIT_ACCOUNT = 90

HEALTHZ, SUBMIT, RECORD = "healthz", "submit", "record-info"
ENDPOINTS = (HEALTHZ, SUBMIT, RECORD)
COLORS = {HEALTHZ: "#8c8c8c", SUBMIT: "#dd8452", RECORD: "#4c72b0"}
WRK_INSTALL = (
    "wrk is not installed: `apt-get install wrk` on Debian or Ubuntu, "
    "or build it from https://github.com/wg/wrk"
)


@dataclass(frozen=True)
class Options:
    """What to measure; ``--quick`` only changes the defaults, explicit flags still win."""

    duration: int
    connections: tuple[int, ...]
    api_processes: tuple[int, ...]
    accounts: int
    threads: int
    max_rate: int
    ids: int
    with_worker: bool
    out: Path
    settings: dict[str, str]

    @property
    def tracks_per_run(self) -> int:
        """Tracks imported for each submit row: every submit must find a fresh one."""
        return math.ceil(self.max_rate * self.duration * 1.2)


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = bench_parser(__doc__, "bench/out/load", "2-s rows at 16 connections, 1 process")
    parser.add_argument("--duration", type=int, help="seconds of each wrk run (10)")
    parser.add_argument("--connections", help="wrk connection counts, comma-separated (16,32,64)")
    parser.add_argument(
        "--api-processes",
        help="values of WAVFORGE_API_PROCESSES to run, comma-separated (1,2); a build that "
        "does not know the setting ignores it, and the report says so",
    )
    parser.add_argument(
        "--accounts", type=int, help="accounts whose tasks record-info reads, one key each (64)"
    )
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (1)")
    parser.add_argument(
        "--max-rate",
        type=int,
        help="the most submits/s expected: tracks imported per submit row = "
        "1.2 x max-rate x duration (1500)",
    )
    parser.add_argument("--ids", type=int, help="tasks the record-info rows read (2048)")
    parser.add_argument(
        "--with-worker",
        action="store_true",
        help="run the embedded worker too (converting what is submitted, on the same cores)",
    )
    args = parser.parse_args(argv)
    quick = args.quick
    options = Options(
        duration=args.duration or (2 if quick else 10),
        connections=numbers(args.connections or ("16" if quick else "16,32,64")),
        api_processes=numbers(args.api_processes or ("1" if quick else "1,2")),
        accounts=args.accounts or (16 if quick else 64),
        threads=args.threads,
        max_rate=args.max_rate or (1000 if quick else 1500),
        ids=args.ids or (256 if quick else 2048),
        with_worker=args.with_worker,
        out=args.out,
        settings=settings_of(args),
    )
    if min(options.connections) < options.threads:
        parser.error("every connection count must be at least --threads")
    if min(options.duration, options.accounts, options.max_rate, options.ids) < 1:
        parser.error("--duration, --accounts, --max-rate and --ids must be at least 1")
    return options


def numbers(text: str) -> tuple[int, ...]:
    return tuple(int(item) for item in text.split(","))


# --- the wrk scripts --------------------------------------------------------------------------

# Each wrk thread reads its own file of "key id" lines (WF_REQUESTS, with %d for the thread's
# number) and formats every request once, in init; request() then walks the list. A submit
# list is walked once: a request past its end reuses a track, is counted as "reused" and will
# answer 409. response() counts statuses; done() sums the threads' counts and prints one JSON
# line with wrk's own latency percentiles (closed loop: a slow answer delays the next request).
LUA_COMMON = """\
local threads = {}

function setup(thread)
  thread:set("thread_index", #threads)
  table.insert(threads, thread)
end

function init(args)
  statuses, reused, position, queue = {}, 0, 0, {}
  local pattern = os.getenv("WF_REQUESTS")
  if pattern == nil then
    queue[1] = make()
    return
  end
  for line in io.lines(string.format(pattern, thread_index)) do
    local key, id = line:match("^(%S+) (%S+)$")
    queue[#queue + 1] = make(key, id)
  end
end

function request()
  position = position + 1
  if position > #queue then
    position, wrapped = 1, true
  end
  if wrapped and ONCE then
    reused = reused + 1
  end
  return queue[position]
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local counts, parts, reused_total = {}, {}, 0
  for _, thread in ipairs(threads) do
    for code, n in pairs(thread:get("statuses")) do
      counts[code] = (counts[code] or 0) + n
    end
    reused_total = reused_total + thread:get("reused")
  end
  for code, n in pairs(counts) do
    parts[#parts + 1] = string.format('"%d": %d', code, n)
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests": %d, "duration_us": %d, "bytes": %d, "errors": {"connect": %d, ' ..
    '"read": %d, "write": %d, "status": %d, "timeout": %d}, "latency_us": {"p50": %d, ' ..
    '"p90": %d, "p99": %d, "max": %d, "mean": %.1f}, "statuses": {%s}, "reused": %d}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean, table.concat(parts, ", "), reused_total))
end
"""

LUA_MAKE = {
    HEALTHZ: """\
ONCE = false

function make()
  return wrk.format("GET", "/healthz")
end
""",
    SUBMIT: """\
ONCE = true
local callback = os.getenv("WF_CALLBACK")

function make(key, track)
  local headers = {["Authorization"] = "Bearer " .. key, ["Content-Type"] = "application/json"}
  local body = '{"audioId":"' .. track .. '","callBackUrl":"' .. callback .. '"}'
  return wrk.format("POST", "/api/v1/wav/generate", headers, body)
end
""",
    RECORD: """\
ONCE = false

function make(key, task)
  local headers = {["Authorization"] = "Bearer " .. key}
  return wrk.format("GET", "/api/v1/wav/record-info?taskId=" .. task, headers)
end
""",
}


def write_scripts(out: Path) -> dict[str, Path]:
    """One Lua script per endpoint, into ``out`` (so a reader can rerun wrk by hand)."""
    scripts = {}
    for endpoint in ENDPOINTS:
        path = out / f"{endpoint}.lua"
        header = f"-- {endpoint}: generated by bench/load.py\n"
        path.write_text(header + LUA_MAKE[endpoint] + "\n" + LUA_COMMON)
        scripts[endpoint] = path
    return scripts


def write_slices(pairs: dict[Key, list[str]], threads: int, pattern: Path) -> str:
    """Split ``key -> ids`` into one file per wrk thread; every key (and so every id) goes
    to exactly one thread, and each file takes its keys in turn. Returns the %d pattern."""
    for thread in range(threads):
        mine = [
            (key, ids)
            for number, (key, ids) in enumerate(pairs.items())
            if number % threads == thread
        ]
        longest = max((len(ids) for _, ids in mine), default=0)
        lines = [
            f"{key.key} {ids[i]}\n" for i in range(longest) for key, ids in mine if i < len(ids)
        ]
        Path(str(pattern) % thread).write_text("".join(lines))
    return str(pattern)


# --- one wrk run ------------------------------------------------------------------------------


@dataclass
class Row:
    """One wrk run: an endpoint at a connection count, on a number of API processes."""

    endpoint: str
    api_processes: int
    connections: int
    requests: int
    seconds: float
    latency_ms: dict[str, float]
    statuses: dict[str, int]
    socket_errors: dict[str, int]
    reused: int
    server_cpu: float  # seconds, the server's whole process tree
    wrk_cpu: float  # seconds
    reference_rate: float | None = None  # /healthz at the same connections and processes

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    @property
    def non_2xx(self) -> int:
        return sum(n for code, n in self.statuses.items() if not code.startswith("2"))

    @property
    def errors(self) -> int:
        return sum(self.socket_errors.values())

    @property
    def problems(self) -> list[str]:
        """Why the row misses its bar (nothing for healthz, the reference)."""
        if self.endpoint == HEALTHZ:
            return []
        found = []
        if self.non_2xx:
            other = sorted((code, n) for code, n in self.statuses.items() if code[0] != "2")
            found.append("non-2xx answers: " + ", ".join(f"{n} x {code}" for code, n in other))
        if self.reused:
            found.append(f"the track pool ran out: {self.reused} submits reused a track")
        if self.errors:
            found.append(f"socket errors: {self.socket_errors}")
        if self.endpoint == SUBMIT:
            if self.rate < SUBMIT_RATE_BAR:
                found.append(f"{self.rate:.0f} req/s < {SUBMIT_RATE_BAR:.0f}")
            if self.latency_ms["p99"] > SUBMIT_P99_BAR_MS:
                found.append(f"p99 {self.latency_ms['p99']:.1f} ms > {SUBMIT_P99_BAR_MS:.0f}")
        elif self.rate < RECORD_RATE_BAR:
            found.append(f"{self.rate:.0f} req/s < {RECORD_RATE_BAR:.0f}")
        return found

    @property
    def verdict(self) -> str:
        if self.endpoint == HEALTHZ:
            return "reference"
        return "FAIL" if self.problems else "PASS"


def run_wrk(
    script: Path,
    running: Service,
    connections: int,
    seconds: int,
    options: Options,
    env: dict[str, str],
    log: Path,
) -> dict[str, Any]:
    """wrk once; its JSON result line, plus its own CPU time and the server tree's."""
    argv = [
        "wrk", "-t", str(options.threads), "-c", str(connections), "-d", f"{seconds}s",
        "--timeout", "10s", "-s", str(script), running.url,
    ]  # fmt: skip
    server_before = cpu_seconds(running.pid)
    with log.open("w") as output:
        process = subprocess.Popen(
            argv, env=os.environ | env, stdout=output, stderr=subprocess.STDOUT
        )
        _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    server_cpu = cpu_seconds(running.pid) - server_before
    text = log.read_text(errors="replace")
    lines = [line for line in text.splitlines() if line.startswith("WRK_RESULT ")]
    if process.returncode != 0 or not lines:
        raise ToolFailed(f"wrk exited with {process.returncode}:\n{text[-2000:]}")
    result = json.loads(lines[-1].removeprefix("WRK_RESULT "))
    result["wrk_cpu"] = usage.ru_utime + usage.ru_stime
    result["server_cpu"] = server_cpu
    return result


def measure(
    endpoint: str,
    running: Service,
    connections: int,
    processes: int,
    options: Options,
    scripts: dict[str, Path],
    env: dict[str, str],
) -> Row:
    log = options.out / f"wrk-{endpoint}-p{processes}-c{connections}.log"
    result = run_wrk(scripts[endpoint], running, connections, options.duration, options, env, log)
    latency = {name: value / 1000 for name, value in result["latency_us"].items()}
    return Row(
        endpoint=endpoint,
        api_processes=processes,
        connections=connections,
        requests=result["requests"],
        seconds=result["duration_us"] / 1e6,
        latency_ms=latency,
        statuses=result["statuses"],
        socket_errors={k: v for k, v in result["errors"].items() if k != "status" and v},
        reused=result["reused"],
        server_cpu=result["server_cpu"],
        wrk_cpu=result["wrk_cpu"],
    )


# --- one server -------------------------------------------------------------------------------


def prepare(
    running: Service, options: Options, clip: bytes, receiver: Receiver, scratch: Path, out: Console
) -> tuple[list[str], str]:
    """Accounts, tracks and the tasks record-info reads. Returns a submit file pattern per
    connection count and the record-info file pattern.

    Each submit row has accounts of its own, each with at most ``PER_SUBMIT_ACCOUNT`` tracks:
    the server keeps the default quota of unfinished tasks per account, and without a worker
    every task submitted stays unfinished. A row that hit the quota would show its 405s.
    """
    began = time.perf_counter()
    runs = len(options.connections)
    per_run = math.ceil(options.tracks_per_run / PER_SUBMIT_ACCOUNT)
    readers = running.create_keys(options.accounts, credits=1_000_000_000)
    submitters = running.create_keys(per_run * runs, credits=1_000_000_000)
    per_reader = math.ceil(options.ids / options.accounts)
    wanted = {key: per_reader for key in readers} | {key: PER_SUBMIT_ACCOUNT for key in submitters}
    out.print(f"  importing {sum(wanted.values())} tracks for {len(wanted)} accounts ...")

    def tracks_of(key: Key) -> list[str]:
        with running.client(key) as client:
            return import_tracks(client, clip, wanted[key], parallel=4)

    with ThreadPoolExecutor(2) as pool:
        tracks = dict(zip(wanted, pool.map(tracks_of, wanted), strict=True))
    out.print(
        f"  imported in {time.perf_counter() - began:.0f} s; submitting {options.ids} tasks to read"
    )
    tasks = submit_for_reading(running, {key: tracks[key] for key in readers}, receiver)
    record_pattern = write_slices(
        tasks, options.threads, scratch / f"record-p{running.port}-t%d.txt"
    )
    submit_patterns = []
    for run in range(runs):
        of_run = submitters[run * per_run : (run + 1) * per_run]
        submit_patterns.append(
            write_slices(
                {key: tracks[key] for key in of_run},
                options.threads,
                scratch / f"submit-p{running.port}-r{run}-t%d.txt",
            )
        )
    return submit_patterns, record_pattern


def submit_for_reading(
    running: Service, tracks: dict[Key, list[str]], receiver: Receiver
) -> dict[Key, list[str]]:
    """Submit each track once, from Python; the task ids by key. This also warms the submit
    path up before wrk measures it."""

    def submit(key: Key) -> list[str]:
        tasks = []
        with running.client(key) as client:
            for track in tracks[key]:
                body = {"audioId": track, "callBackUrl": receiver.url}
                tasks.append(envelope(client.post("/api/v1/wav/generate", json=body))["taskId"])
        return tasks

    with ThreadPoolExecutor(8) as pool:
        return dict(zip(tracks, pool.map(submit, tracks), strict=True))


def api_processes_known() -> bool:
    """Whether this build of wavforge reads WAVFORGE_API_PROCESSES."""
    from wavforge.config import Settings

    return "api_processes" in Settings.model_fields


def run_server(
    processes: int,
    options: Options,
    clip: bytes,
    receiver: Receiver,
    scripts: dict[str, Path],
    scratch: Path,
    out: Console,
) -> tuple[list[Row], int]:
    """Every row on one fresh server with ``processes`` API processes. Returns the rows and
    how many processes of the server held its listening socket."""
    settings = {
        "WAVFORGE_RATE_LIMIT": "1000/second",
        "WAVFORGE_API_PROCESSES": str(processes),
    } | options.settings
    rows = []
    with service(scratch / f"server-{processes}", settings, worker=options.with_worker) as running:
        submit_patterns, record_pattern = prepare(running, options, clip, receiver, scratch, out)
        listening = listening_processes(running.pid, running.port)  # all up by now
        warm = options.out / f"wrk-warmup-p{processes}.log"
        run_wrk(scripts[HEALTHZ], running, max(options.connections), 2, options, {}, warm)
        for connections, submit_pattern in zip(options.connections, submit_patterns, strict=True):
            env = {
                HEALTHZ: {},
                SUBMIT: {"WF_REQUESTS": submit_pattern, "WF_CALLBACK": receiver.url},
                RECORD: {"WF_REQUESTS": record_pattern},
            }
            reference = None
            for endpoint in ENDPOINTS:
                time.sleep(1)  # let the previous run's last writes settle
                row = measure(
                    endpoint, running, connections, processes, options, scripts, env[endpoint]
                )
                reference = row.rate if endpoint == HEALTHZ else reference
                row.reference_rate = reference
                rows.append(row)
                shout(row, out)
    return rows, listening


def shout(row: Row, out: Console) -> None:
    """One line per row; a failed row's reasons in red."""
    color = {"PASS": "green", "FAIL": "red"}.get(row.verdict, "dim")
    out.print(
        f"  {row.api_processes} proc, {row.connections:3d} conn, {row.endpoint:<11} "
        f"{row.rate:8.0f} req/s  p50 {row.latency_ms['p50']:6.1f} ms  "
        f"p99 {row.latency_ms['p99']:6.1f} ms  [{color}]{row.verdict}[/]"
    )
    for problem in row.problems:
        out.print(f"    [bold red]{escape(problem)}[/]")
    if "409" in row.statuses:
        out.print(
            "    [bold red]409: a track was submitted twice "
            "(the slices overlapped, or the pool ran out)[/]"
        )


# --- the report -------------------------------------------------------------------------------

HEADER = (
    "API procs", "endpoint", "conns", "req/s", "x healthz", "p50 ms", "p90 ms", "p99 ms",
    "max ms", "non-2xx", "socket errors", "server CPU %", "wrk CPU %", "verdict",
)  # fmt: skip


SHORT = {"API procs": "procs", "socket errors": "sock err", "server CPU %": "CPU %"}
SHORT |= {name: name.removesuffix(" ms") for name in HEADER if name.endswith(" ms")}


def table_rows(rows: list[Row]) -> list[tuple[str, ...]]:
    return [
        (
            str(row.api_processes),
            row.endpoint,
            str(row.connections),
            f"{row.rate:.0f}",
            f"{row.rate / row.reference_rate:.2f}" if row.reference_rate else "",
            *(f"{row.latency_ms[p]:.1f}" for p in ("p50", "p90", "p99", "max")),
            str(row.non_2xx),
            str(row.errors),
            f"{100 * row.server_cpu / row.seconds:.0f}",
            f"{100 * row.wrk_cpu / row.seconds:.0f}",
            row.verdict,
        )
        for row in rows
    ]


def bar_rows(rows: list[Row]) -> list[tuple[str, ...]]:
    claims = {
        SUBMIT: f"submit ≥ {SUBMIT_RATE_BAR:.0f} req/s, p99 ≤ {SUBMIT_P99_BAR_MS:.0f} ms, all 2xx",
        RECORD: f"record-info ≥ {RECORD_RATE_BAR:.0f} req/s, all 2xx",
    }
    return [
        (
            claims[row.endpoint],
            f"{row.api_processes} proc, {row.connections} conn",
            f"{row.rate:.0f} req/s, p99 {row.latency_ms['p99']:.1f} ms",
            "FAIL: " + "; ".join(row.problems) if row.problems else "PASS",
        )
        for row in rows
        if row.endpoint != HEALTHZ
    ]


def report(
    options: Options,
    rows: list[Row],
    listening: dict[int, int],
    machine: dict[str, str],
    out: Console,
) -> None:
    out.print()
    # The console gets all but p90 and wrk's CPU, to fit 120 columns; the report has all.
    shown = [i for i, name in enumerate(HEADER) if name not in ("p90 ms", "wrk CPU %")]
    compact = [tuple(row[i] for i in shown) for row in table_rows(rows)]
    title = "Load (wrk on loopback; latencies in ms)"
    out.print(rich_table(title, [SHORT.get(HEADER[i], HEADER[i]) for i in shown], compact))
    known = api_processes_known()
    processes = [
        (str(n), "yes" if known else "no (ignored)", str(listening[n]))
        for n in options.api_processes
    ]
    how = [
        f"- Server: `wavforge serve{'' if options.with_worker else ' --no-worker'}` (embedded: "
        "SQLite, local files), a fresh data dir per API-process setting, on loopback.",
        "- Settings: `WAVFORGE_RATE_LIMIT=1000/second` (per key; so the limit never answers 430 "
        "here), `WAVFORGE_CALLBACK_ALLOW_PRIVATE=true` (the callback receiver is on loopback), "
        "`WAVFORGE_API_PROCESSES` as in the table; the default conversion cost of 1 credit "
        "(accounts hold plenty)"
        + (
            "; and " + ", ".join(f"`{k}={v}`" for k, v in options.settings.items())
            if options.settings
            else ""
        )
        + ".",
        f"- Load: wrk with {options.threads} thread(s), `--timeout 10s`, {options.duration} s a "
        f"row, at {', '.join(map(str, options.connections))} connections; "
        "accounts with one key each, taken in turn request by request.",
        f"- submit: `POST /api/v1/wav/generate` with `audioId` and a loopback `callBackUrl`; "
        f"{options.tracks_per_run} fresh tracks per row (1.2 x `--max-rate` {options.max_rate} "
        "x duration), each submitted once; every track is a 0.2-s MP3 imported beforehand. "
        f"Each row has its own accounts, {PER_SUBMIT_ACCOUNT} tracks each: the server keeps "
        "the default quota of 100 unfinished tasks per account (`WAVFORGE_MAX_UNFINISHED`), "
        "and without a worker every submitted task stays unfinished.",
        f"- record-info: `GET /api/v1/wav/record-info` over {options.ids} tasks submitted "
        f"beforehand, spread over {options.accounts} accounts, each read with its own "
        "account's key.",
        "- healthz: `GET /healthz` (no auth; one `SELECT 1`): the web stack's ceiling, the "
        "reference for *x healthz*.",
        "- Each connection count runs healthz, submit, record-info in turn; one 2-s healthz "
        "run first warms the server up (not reported).",
        f"- The scripts wrk ran are `{options.out}/*.lua`; wrk's output is in "
        f"`{options.out}/wrk-*.log`.",
    ]
    process_header = ("WAVFORGE_API_PROCESSES", "known to this build", "processes holding the port")
    sections = [
        ("Bars", markdown_table(("bar", "configuration", "measured", "verdict"), bar_rows(rows))),
        ("Results", [*markdown_table(HEADER, table_rows(rows)), "", "![req/s and p99](load.png)"]),
        ("API processes", markdown_table(process_header, processes)),
        ("How it was measured", how),
        ("How to read this", READING),
    ]
    results = [
        asdict(r) | {"rate": r.rate, "verdict": r.verdict, "problems": r.problems} for r in rows
    ]
    save(out, options.out, {
        "report.md": lambda path: write_report(path, "API load benchmark", machine, sections),
        "results.json": lambda path: write_json(path, results),
        "load.png": lambda path: plot(rows, path, out),
    })  # fmt: skip


READING = [
    "- *req/s* is wrk's completed requests over the run's length; *x healthz* divides it by",
    "  healthz's req/s at the same connections and processes, measured just before.",
    "- Latencies are wrk's (closed loop: each connection waits for an answer before its next",
    "  request), from the request's start to the whole answer, in ms.",
    "- *non-2xx* must be 0: a 409 on submit means a track was submitted twice (the slices",
    "  overlapped, or the pool ran out: raise `--max-rate`); a 430 means the rate limit; a",
    "  405 means an account reached the quota of unfinished tasks.",
    "- *server CPU %* is the CPU time of the server's process tree over the run (200 % is two",
    "  cores busy); *wrk CPU %* is wrk's own. wrk and the server share the machine's cores, so",
    "  on a small machine wrk's share is taken from the server.",
    "- *processes holding the port*: with several API processes each listens on a socket of",
    "  its own, so 2 API processes show as 2; 1 means the setting had no effect.",
]


def plot(rows: list[Row], path: Path, out: Console) -> None:
    """``load.png``: req/s and p99 against connections, a line per endpoint and processes."""
    with figure(path, out, size=(13, 5)) as axes:
        if axes is not None:
            draw(rows, *axes)


def draw(rows: list[Row], rate_axes: Any, p99_axes: Any) -> None:
    styles, markers = ["-", "--", ":", "-."], ["o", "s", "^", "D"]
    for endpoint in ENDPOINTS:
        for index, processes in enumerate(sorted({row.api_processes for row in rows})):
            mine = [r for r in rows if r.endpoint == endpoint and r.api_processes == processes]
            xs = [r.connections for r in mine]
            label = f"{endpoint}, {processes} proc"
            style = dict(
                color=COLORS[endpoint],
                linestyle=styles[index % 4],
                marker=markers[index % 4],
                label=label,
            )
            rate_axes.plot(xs, [r.rate for r in mine], **style)
            p99_axes.plot(xs, [r.latency_ms["p99"] for r in mine], **style)
    for axes, value, color in (
        (rate_axes, SUBMIT_RATE_BAR, COLORS[SUBMIT]),
        (rate_axes, RECORD_RATE_BAR, COLORS[RECORD]),
        (p99_axes, SUBMIT_P99_BAR_MS, COLORS[SUBMIT]),
    ):
        axes.axhline(value, color=color, linestyle="--", linewidth=1, alpha=0.6)
    rate_axes.set_title("Requests per second (dashed: the bars)")
    rate_axes.set_ylabel("req/s")
    p99_axes.set_title(f"p99 latency (dashed: submit bar, {SUBMIT_P99_BAR_MS:.0f} ms)")
    p99_axes.set_ylabel("ms")
    for axes in (rate_axes, p99_axes):
        axes.set_xlabel("wrk connections")
        axes.set_xticks(sorted({row.connections for row in rows}))
        axes.set_ylim(bottom=0)
        axes.legend(fontsize=8)


# --- main -------------------------------------------------------------------------------------


def run(options: Options, out: Console) -> None:
    if shutil.which("wrk") is None:
        raise ToolFailed(WRK_INSTALL)
    load_at_start = os.getloadavg()[0]
    options.out.mkdir(parents=True, exist_ok=True)
    scripts = write_scripts(options.out)
    if not api_processes_known() and max(options.api_processes) > 1:
        out.print(
            "[yellow]this build does not read WAVFORGE_API_PROCESSES: every row runs 1 process[/]"
        )
    receiver = Receiver()
    rows: list[Row] = []
    listening: dict[int, int] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="wavforge-load-") as raw:
            scratch = Path(raw)
            clip = make_clip(scratch / "clip.mp3", 0.2).read_bytes()
            for processes in options.api_processes:
                out.rule(f"WAVFORGE_API_PROCESSES={processes}")
                mine, listening[processes] = run_server(
                    processes, options, clip, receiver, scripts, scratch, out
                )
                rows += mine
    finally:
        receiver.close()
    wrk_version = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout
    machine = machine_info(
        load_at_start,
        wrk=wrk_version.split(" Copyright")[0].strip(),
        uvicorn=importlib.metadata.version("uvicorn"),
    )
    report(options, rows, listening, machine, out)
    failed = [row for row in rows if row.problems and (row.non_2xx or row.reused)]
    if failed:
        rows_ = "1 row" if len(failed) == 1 else f"{len(failed)} rows"
        out.print(f"[bold red]{rows_} had non-2xx answers or reused tracks: see above[/]")


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    return main_of(lambda out: run(options, out))


if __name__ == "__main__":
    raise SystemExit(main())
