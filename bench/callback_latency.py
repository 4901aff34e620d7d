#!/usr/bin/env python3
"""Submit-to-callback latency of one 3-minute track, against the conversion alone.

A client that submits one track waits for the conversion plus whatever the service adds:
the submit request, queueing, the claim, storing the WAV, the outbox and the callback POST.
This measures both sides on the same machine, in turns, one task at a time so nothing queues:

(a) the conversion alone: ``wavforge.audio.convert`` (the engine the worker runs, with the
    same limits and checksum) timed inside a fresh Python process, after its imports and a
    tiny warm-up conversion, as the service's pre-started converter child has done;
(b) the service: from the start of ``POST /api/v1/wav/generate`` to the callback's arrival at
    a receiver on loopback, through an embedded ``wavforge serve`` with its worker.

The bar: median (b) at most median (a) + 100 ms.

    python -m bench.callback_latency --quick      # smoke test: 1-min track, 2 rounds
    python -m bench.callback_latency              # 3-min track, 7 rounds
"""

from __future__ import annotations

import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console

from bench.harness import (
    Receiver,
    Service,
    ToolFailed,
    ensure_input,
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
    spread,
    write_json,
    write_report,
)
from bench.harness import parser as bench_parser

TITLE = "Submit-to-callback latency"
OVERHEAD_BAR_MS = 100.0  # median(submit -> callback) - median(conversion alone), at most

# The conversion alone, as the worker's converter child runs it: imports done and a tiny file
# converted before the clock starts, the same limits (from the same WAVFORGE_* settings), the
# checksum on (the service's analysis carries the WAV's SHA-256). Prints seconds as JSON.
ALONE = """\
import json, sys, time
from pathlib import Path
from wavforge import audio
from wavforge.config import Settings

source, target, warm = map(Path, sys.argv[1:4])
limits = Settings().audio_limits()
audio.convert(warm, target, limits=limits)
target.unlink()
began = time.perf_counter()
audio.convert(source, target, limits=limits)
print(json.dumps(time.perf_counter() - began))
target.unlink()
"""
# As the service's converter child sets them before numpy loads (see wavforge.audio.isolation).
SINGLE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

# The stages of one task, from the deployment's own database (record-info's createTime and
# completeTime are whole seconds: too coarse for a 100-ms budget).
STAGES = (
    ("submit → task row", "the submit request until its task row was written"),
    ("row → claimed", "queue: until a worker thread claimed the task"),
    ("claimed → finished", "the conversion in the converter child, storing the WAV, the update"),
    ("finished → callback sent", "outbox: until the callback's POST began"),
    ("callback sent → arrived", "the POST until the receiver saw it"),
)
STAGE_COLORS = ("#8c8c8c", "#c44e52", "#dd8452", "#8172b3", "#55a868")


@dataclass(frozen=True)
class Options:
    minutes: int
    rounds: int
    inputs: Path
    out: Path
    settings: dict[str, str]


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = bench_parser(__doc__, "bench/out/callback_latency", "1-min track, 2 rounds")
    parser.add_argument("--minutes", type=int, help="length of the track (3)")
    parser.add_argument("--rounds", type=int, help="timed rounds, each (a) and (b) once (7)")
    parser.add_argument(
        "--inputs", type=Path, default=Path("bench/out/inputs"), help="engine.py's input cache"
    )
    args = parser.parse_args(argv)
    options = Options(
        minutes=args.minutes or (1 if args.quick else 3),
        rounds=args.rounds or (2 if args.quick else 7),
        inputs=args.inputs,
        out=args.out,
        settings=settings_of(args),
    )
    if min(options.minutes, options.rounds) < 1:
        parser.error("--minutes and --rounds must be at least 1")
    return options


@dataclass
class Round:
    number: int
    order: str
    alone: float = 0.0  # seconds
    total: float = 0.0  # seconds, submit start to callback arrival
    submit: float = 0.0  # seconds, the submit request alone
    stages: dict[str, float] = field(default_factory=dict)  # seconds; empty if unknown

    @property
    def overhead_ms(self) -> float:
        return 1000 * (self.total - self.alone)


# --- the two sides ----------------------------------------------------------------------------


def convert_alone(source: Path, scratch: Path, warm: Path, env: dict[str, str]) -> float:
    """Seconds of one ``audio.convert`` in a fresh process, start-up and imports excluded."""
    argv = [sys.executable, "-c", ALONE, str(source), str(scratch / "alone.wav"), str(warm)]
    done = subprocess.run(argv, env=env | SINGLE_THREAD, capture_output=True, text=True)
    if done.returncode != 0:
        raise ToolFailed(f"the conversion alone exited with {done.returncode}:\n{done.stderr}")
    return float(json.loads(done.stdout.strip().splitlines()[-1]))


@dataclass(frozen=True)
class Trip:
    task_id: str
    total: float
    submit: float
    sent_wall: float  # time.time() when the submit began
    arrived_wall: float


def through_service(client: httpx.Client, track: str, receiver: Receiver) -> Trip:
    """One task, from the submit request's start to its callback's arrival."""
    body = {"audioId": track, "callBackUrl": receiver.url}
    sent_wall, began = time.time(), time.perf_counter()
    task = envelope(client.post("/api/v1/wav/generate", json=body))["taskId"]
    answered = time.perf_counter()
    receiver.wait_for_tasks({task}, timeout=600)
    callback = receiver.first(task)
    assert callback is not None
    return Trip(task, callback.at - began, answered - began, sent_wall, callback.wall)


def stages(running: Service, trip: Trip) -> dict[str, float]:
    """The trip cut at the task's and its callback's timestamps in the deployment's SQLite
    database (naive UTC, to the microsecond); empty if they cannot be read."""
    path = running.data_dir / "wavforge.db"
    query = """
        SELECT t.created_at, t.started_at, t.completed_at, a.started_at
        FROM wav_tasks t JOIN deliveries d ON d.wav_task_id = t.id
        JOIN delivery_attempts a ON a.delivery_id = d.id
        WHERE t.id = ? ORDER BY a.id LIMIT 1
    """
    deadline = time.monotonic() + 5  # the attempt row is written once the POST has returned
    while time.monotonic() < deadline:
        try:
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
                row = db.execute(query, (trip.task_id,)).fetchone()
        except sqlite3.Error:
            return {}
        if row and None not in row:
            created, claimed, finished, sent = (epoch(value) for value in row)
            marks = (trip.sent_wall, created, claimed, finished, sent, trip.arrived_wall)
            names = [name for name, _ in STAGES]
            return {name: marks[i + 1] - marks[i] for i, name in enumerate(names)}
        time.sleep(0.05)
    return {}


def epoch(value: str) -> float:
    return datetime.fromisoformat(value).replace(tzinfo=UTC).timestamp()


# --- the run ----------------------------------------------------------------------------------


def run(options: Options, out: Console) -> None:
    """The rounds, then the report."""
    rounds, machine = measure(options, out)
    options.out.mkdir(parents=True, exist_ok=True)
    report(options, rounds, machine, out)


def measure(options: Options, out: Console) -> tuple[list[Round], dict[str, str]]:
    load_at_start = os.getloadavg()[0]
    source = ensure_input(options.inputs, options.minutes, out)
    receiver = Receiver()
    rounds = []
    try:
        with tempfile.TemporaryDirectory(prefix="wavforge-callback-") as raw:
            scratch = Path(raw)
            warm = make_clip(scratch / "warm.mp3", 0.2)
            with service(scratch / "server", options.settings, worker=True) as running:
                key = running.create_key("bench", credits=options.rounds + 10)
                with running.client(key) as client:
                    out.print(
                        f"importing the {options.minutes}-min track {options.rounds + 1} times ..."
                    )
                    tracks = import_tracks(
                        client, source.read_bytes(), options.rounds + 1, parallel=2
                    )
                    out.print("warming up: one conversion alone, one task through the service")
                    convert_alone(source, scratch, warm, running.env)
                    through_service(client, tracks.pop(), receiver)
                    for number in range(1, options.rounds + 1):
                        rounds.append(
                            one_round(
                                number,
                                client,
                                tracks.pop(),
                                source,
                                scratch,
                                warm,
                                running,
                                receiver,
                            )
                        )
                        shout(rounds[-1], options.rounds, out)
    finally:
        receiver.close()
    return rounds, machine_info(load_at_start)


def one_round(
    number: int,
    client: httpx.Client,
    track: str,
    source: Path,
    scratch: Path,
    warm: Path,
    running: Service,
    receiver: Receiver,
) -> Round:
    """(a) and (b) once each; odd rounds start with (a), even ones with (b), so a drift
    over the run weighs on both alike."""
    order = "a, b" if number % 2 else "b, a"
    result = Round(number, order)
    for side in order.split(", "):
        if side == "a":
            result.alone = convert_alone(source, scratch, warm, running.env)
        else:
            trip = through_service(client, track, receiver)
            result.total, result.submit = trip.total, trip.submit
            result.stages = stages(running, trip)
    return result


def shout(result: Round, rounds: int, out: Console) -> None:
    out.print(
        f"  round {result.number}/{rounds} ({result.order}): alone {result.alone:.3f} s, "
        f"submit → callback {result.total:.3f} s, difference {result.overhead_ms:+.0f} ms"
    )


# --- the report -------------------------------------------------------------------------------


def report(options: Options, rounds: list[Round], machine: dict[str, str], out: Console) -> None:
    alone = statistics.median(r.alone for r in rounds)
    total = statistics.median(r.total for r in rounds)
    overhead = 1000 * (total - alone)
    verdict = "PASS" if overhead <= OVERHEAD_BAR_MS else "FAIL"
    bar = (
        f"median submit → callback ≤ median conversion alone + {OVERHEAD_BAR_MS:.0f} ms",
        f"{total:.3f} s vs {alone:.3f} s: {overhead:+.0f} ms",
        verdict,
    )
    summary_header = ("measure", "median", "min", "max")
    summary = [
        ("(a) conversion alone, s", *spread([r.alone for r in rounds])),
        ("(b) submit → callback, s", *spread([r.total for r in rounds])),
        ("(b) - (a) in the same round, ms", *spread([r.overhead_ms for r in rounds], digits=0)),
        ("the submit request, ms", *spread([r.submit for r in rounds], 1000, 1)),
    ]
    round_header = ("round", "order", "(a) alone s", "(b) submit → callback s", "(b) - (a) ms")
    round_rows = [
        (str(r.number), r.order, f"{r.alone:.3f}", f"{r.total:.3f}", f"{r.overhead_ms:+.0f}")
        for r in rounds
    ]
    known = [r for r in rounds if r.stages]
    stage_rows = [
        (name, meaning, *spread([r.stages[name] for r in known], 1000, 1))
        for name, meaning in STAGES
        if known
    ]
    out.print()
    out.print(rich_table("Rounds", round_header, round_rows))
    out.print(rich_table("Summary", summary_header, summary))
    if stage_rows:
        out.print(
            rich_table(
                "Where the time goes, ms", ("stage", "what", "median", "min", "max"), stage_rows
            )
        )
    color = "green" if verdict == "PASS" else "red"
    out.print(f"bar: {bar[0]}: {bar[1]} [{color}]{verdict}[/]")
    breakdown = (
        markdown_table(("stage", "what", "median ms", "min ms", "max ms"), stage_rows)
        if stage_rows
        else ["The task rows' timestamps could not be read (not the embedded SQLite database?)."]
    )
    sections = [
        ("Bar", markdown_table(("bar", "measured", "verdict"), [bar])),
        ("Summary", markdown_table(summary_header, summary)),
        (
            "Rounds",
            [
                *markdown_table(round_header, round_rows),
                "",
                "![rounds and stages](callback_latency.png)",
            ],
        ),
        ("Where the service's time goes", [*STAGE_NOTE, "", *breakdown]),
        ("How it was measured", how(options)),
    ]
    save(out, options.out, {
        "report.md": lambda path: write_report(path, TITLE, machine, sections),
        "rounds.json": lambda path: write_json(path, [r.__dict__ for r in rounds]),
        "callback_latency.png": lambda path: plot(rounds, path, out),
    })  # fmt: skip


STAGE_NOTE = [
    "Each stage is the median over the rounds, cut at the timestamps the service writes in its",
    "own database (the task row's `created_at`, `started_at` and `completed_at`, the first",
    "callback attempt's `started_at`) and at the benchmark's own clock for the submit's start",
    "and the callback's arrival. record-info shows `createTime` and `completeTime` too, but",
    "in whole seconds, so the benchmark reads the rows of its own embedded SQLite database.",
    "All clocks are this machine's wall clock. *claimed → finished* includes the conversion;",
    "compare it with (a) to see what the worker adds around it.",
]


def how(options: Options) -> list[str]:
    settings = ", ".join(f"`{k}={v}`" for k, v in options.settings.items()) or "none"
    return [
        f"- Input: a {options.minutes}-min 320 kb/s stereo 44.1 kHz MP3 (tones over pink "
        f"noise, `engine.py`'s input, cached in `{options.inputs}`), imported once per round.",
        "- Server: `wavforge serve` with its embedded worker (SQLite, local files, default "
        f"settings but `WAVFORGE_CALLBACK_ALLOW_PRIVATE=true`; extra settings: {settings}).",
        "- (a) the conversion alone: `wavforge.audio.convert` with the settings' limits and the",
        "  checksum on, timed inside a fresh Python process after its imports and a 0.2-s warm-up",
        "  conversion. Not `wavforge convert-file`: its interpreter start-up and imports (about",
        "  half a second) are a cost the service never pays per task, since its converter child",
        "  is started once and warmed up, so counting them would flatter the service.",
        "- (b) through the service: the clock starts before `POST /api/v1/wav/generate` (with",
        "  `audioId` and a loopback `callBackUrl`) and stops when the callback reaches the",
        "  receiver's handler. One task at a time: nothing queues behind another.",
        "- One untimed (a) and one untimed (b) come first; then the rounds alternate the order",
        "  (a, b then b, a) so a drift on the machine weighs on both sides alike.",
    ]


def plot(rounds: list[Round], path: Path, out: Console) -> None:
    """``callback_latency.png``: (a) and (b) per round, and (b) cut into its stages."""
    with figure(path, out) as axes:
        if axes is not None:
            draw(rounds, *axes)


def draw(rounds: list[Round], rounds_axes: Any, stage_axes: Any) -> None:
    numbers = [r.number for r in rounds]
    rounds_axes.plot(
        numbers, [r.alone for r in rounds], "o-", color="#4c72b0", label="(a) conversion alone"
    )
    rounds_axes.plot(
        numbers, [r.total for r in rounds], "o-", color="#dd8452", label="(b) submit → callback"
    )
    budget = statistics.median(r.alone for r in rounds) + OVERHEAD_BAR_MS / 1000
    rounds_axes.axhline(
        budget, color="grey", linestyle="--", linewidth=1, label="bar: median (a) + 100 ms"
    )
    rounds_axes.set_xlabel("round")
    rounds_axes.set_ylabel("seconds")
    rounds_axes.set_xticks(numbers)
    rounds_axes.set_ylim(bottom=0)
    rounds_axes.set_title("Each round")
    rounds_axes.legend(fontsize=8)
    known = [r for r in rounds if r.stages]
    if known:
        left = 0.0
        for (name, _), color in zip(STAGES, STAGE_COLORS, strict=True):
            width = statistics.median(r.stages[name] for r in known)
            stage_axes.barh(["(b) service"], [width], left=left, color=color, label=name)
            left += width
        alone = statistics.median(r.alone for r in rounds)
        stage_axes.barh(["(a) alone"], [alone], color="#4c72b0", label="conversion alone")
        stage_axes.set_xlabel("seconds (medians)")
        stage_axes.set_title("Where the service's time goes")
        stage_axes.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=3)


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    return main_of(lambda out: run(options, out))


if __name__ == "__main__":
    raise SystemExit(main())
