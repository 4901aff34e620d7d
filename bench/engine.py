#!/usr/bin/env python3
"""Audio engine benchmark: ``wavforge convert-file`` against the ffmpeg CLI and pydub.

Every tool runs as a whole process, because that is what a user pays for: interpreter start-up,
imports, decoding and writing the WAV. The tools take turns (ffmpeg, wavforge, pydub, ffmpeg, ...)
so that drift on a shared machine (a noisy neighbour, CPU boost, page cache) hits all of them alike
instead of whichever happened to run last. Peak memory comes from the kernel's own accounting
(``ru_maxrss`` from ``wait4``), not from sampling, so short spikes cannot slip through.

Two more views of the same cost: start-up alone (``convert-file`` on a 1-s file, beside the bare
interpreter and ffmpeg), and ffmpeg and wavforge again while a busy loop the script starts itself
keeps one core occupied, since a split decode only pays where a second core is free.

Run ``python -m bench.engine --quick`` for a smoke test, ``python -m bench.engine`` for the real
thing; ``bench/README.md`` explains how to read what it writes.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.metadata
import importlib.util
import os
import platform
import re
import shlex
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import IO, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from tests.support.bytecode import compile_packages

REFERENCE = "ffmpeg"
# "wavforge-loudness" is wavforge with its loudness meter on (--loudness): the meter's cost;
# "wavforge-peaks" with its waveform peaks on (--peaks, written beside the WAV): theirs.
TOOLS = (REFERENCE, "wavforge", "wavforge-loudness", "wavforge-peaks", "pydub")
COLORS = {
    "ffmpeg": "#4c72b0",
    "wavforge": "#dd8452",
    "wavforge-loudness": "#f2b38a",
    "wavforge-peaks": "#c44e52",
    "pydub": "#55a868",
}

# The bars the engine is held to.
SPEED_BAR = 0.8  # wavforge wall time / ffmpeg wall time, at most, with every core free
BUSY_SPEED_BAR = 1.0  # ... at most, with one core kept busy (--busy-cores)
SPEED_BAR_MINUTES = 20  # ... measured on this input length
STARTUP_BAR = 0.15  # median wall time of `wavforge convert-file` on a 1-s file, at most
STARTUP_SECONDS = 1  # the start-up input's length
# Busy loops standing for "the machine is doing something else"; they start this long before
# the first timed run, so the scheduler has placed them.
BUSY_PROGRAM = "while True: pass"
BUSY_SETTLE_SECONDS = 0.5
RSS_BAR_MB = 150.0  # wavforge peak RSS on the memory-run input, at most
PYDUB_BAR = 2.0  # pydub wall time / wavforge wall time, at least
LOUDNESS_BAR = 0.10  # wavforge-loudness / wavforge - 1 (the loudness meter's cost), at most
PEAKS_BAR = 0.05  # wavforge-peaks / wavforge - 1 (the waveform peaks' cost), at most

# pydub has no command line; this is the smallest program that uses it the documented way.
PYDUB_PROGRAM = (
    "import sys\n"
    "from pydub import AudioSegment\n"
    "AudioSegment.from_mp3(sys.argv[1]).export(sys.argv[2], format='wav')\n"
)

CHUNK = 1 << 20  # bytes read at a time while hashing PCM
MIB = 1024 * 1024
NUMBER = re.compile(r"[+-]?[\d.]+x?")  # a table cell that should align right


@dataclass(frozen=True)
class Settings:
    """What to measure; ``--quick`` only changes the defaults, explicit flags still win."""

    minutes: tuple[int, ...]
    memory_minutes: int
    runs: int
    out: Path
    tools: tuple[str, ...]
    startup_runs: int = 20
    busy_cores: int = 1


@dataclass(frozen=True)
class Run:
    """One finished process: how long it took, the most memory it ever held, and the CPU time
    it and the descendants it waited for spent (user and system)."""

    seconds: float
    peak_rss_mb: float
    cpu_seconds: float = 0.0


@dataclass(frozen=True)
class Check:
    """How a tool's WAV compares with ``ffmpeg -f s16le``: the promise wavforge makes."""

    identical: bool
    bits: int

    def __str__(self) -> str:
        verdict = "yes" if self.identical else "no"
        return verdict if self.bits == 16 else f"{verdict} ({self.bits}-bit PCM)"


@dataclass(frozen=True)
class Load:
    """The background load of the busy rows: how many loops, and how much CPU they got."""

    processes: int
    seconds: float  # how long they ran
    cpu_seconds: float  # user + system time they got, together

    def __str__(self) -> str:
        share = self.cpu_seconds / self.seconds if self.seconds else 0.0
        return (
            f"{self.processes} busy-loop process{'es' if self.processes > 1 else ''}, "
            f"{share:.0%} of a core over {self.seconds:.0f} s"
        )


@dataclass
class Result:
    """Every run of one tool on one input, plus the verdict on its output."""

    tool: str
    minutes: int
    runs: list[Run] = field(default_factory=list)
    check: Check | None = None

    @property
    def times(self) -> list[float]:
        return [run.seconds for run in self.runs]

    @property
    def cpu_times(self) -> list[float]:
        return [run.cpu_seconds for run in self.runs]

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def peak_rss_mb(self) -> float:
        return max(run.peak_rss_mb for run in self.runs)


@dataclass(frozen=True)
class Bar:
    """One claim about the engine, and whether this run of the benchmark upholds it."""

    claim: str
    measured: str
    passed: bool | None  # None: not measured in this run (e.g. --no-pydub)

    @property
    def verdict(self) -> str:
        return {True: "PASS", False: "FAIL", None: "SKIP"}[self.passed]


class ToolFailed(RuntimeError):
    """A tool exited non-zero: the numbers would be meaningless, so the benchmark stops."""


# --- command line -----------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> Settings:
    """Read the flags; the defaults depend on ``--quick``, which is why they start as None."""
    parser = argparse.ArgumentParser(description="Benchmark wavforge convert-file.")
    parser.add_argument("--minutes", type=int, nargs="+", help="timed input lengths (3 20)")
    parser.add_argument("--memory-minutes", type=int, help="memory-run input length (60)")
    parser.add_argument("--runs", type=int, help="timed runs per tool and input (5)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "out")
    parser.add_argument("--no-pydub", action="store_true", help="leave pydub out entirely")
    parser.add_argument(
        "--startup-runs", type=int, help="runs of each start-up command (20; --quick 10)"
    )
    parser.add_argument(
        "--busy-cores",
        type=int,
        default=1,
        help="cores kept busy for the busy rows (1); 0 leaves the busy rows out",
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke test: 1-min input, 2 runs, 3-min memory run"
    )
    args = parser.parse_args(argv)
    minutes, memory_minutes, runs = ((1,), 3, 2) if args.quick else ((3, 20), 60, 5)
    settings = Settings(
        minutes=tuple(args.minutes or minutes),
        memory_minutes=args.memory_minutes or memory_minutes,
        runs=args.runs or runs,
        out=args.out,
        tools=tuple(tool for tool in TOOLS if not (args.no_pydub and tool == "pydub")),
        startup_runs=args.startup_runs or (10 if args.quick else 20),
        busy_cores=args.busy_cores,
    )
    if min(*settings.minutes, settings.memory_minutes, settings.runs, settings.startup_runs) < 1:
        parser.error("lengths, --runs and --startup-runs must be at least 1")
    if not 0 <= settings.busy_cores < len(os.sched_getaffinity(0)):
        parser.error("--busy-cores must leave at least one core free (0 for no busy rows)")
    return settings


# --- inputs -----------------------------------------------------------------------------------


def ensure_input(cache_dir: Path, minutes: int, console: Console) -> Path:
    """Return a cached MP3 of ``minutes`` length, encoding it first if this is the first run.

    The encode goes to a temporary name and is renamed at the end, so an interrupted encode is
    never mistaken for a finished one next time.
    """
    return ensure_clip(cache_dir, minutes * 60, f"{minutes}min", console)


def ensure_clip(cache_dir: Path, seconds: int, name: str, console: Console) -> Path:
    """``ensure_input`` for any length: ``input-{name}.mp3``, ``seconds`` long."""
    path = cache_dir / f"input-{name}.mp3"
    if path.exists():
        return path
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.stem}.part.mp3")
    console.print(f"[dim]encoding the {name} input (320 kb/s MP3) into {path} ...[/]")
    run_checked(encode_command(seconds, partial))
    partial.replace(path)
    return path


def encode_command(seconds: int, target: Path) -> list[str]:
    """A 320 kb/s stereo MP3 of two tones (one per channel) over pink noise.

    Silence or a pure tone would flatter any decoder: the noise keeps every frame busy, like music.
    """
    return [
        "ffmpeg", "-v", "error", "-y",
        "-f", "lavfi", "-i", f"sine=f=220:r=44100:d={seconds}",
        "-f", "lavfi", "-i", f"sine=f=331:r=44100:d={seconds}",
        "-f", "lavfi", "-i", f"anoisesrc=c=pink:a=0.2:r=44100:d={seconds}",
        "-filter_complex",
        "[0][1]amerge=inputs=2[s];"
        "[2]aformat=channel_layouts=mono,pan=stereo|c0=c0|c1=c0[n];"
        "[s][n]amix=inputs=2:normalize=0",
        "-ar", "44100", "-ac", "2", "-c:a", "libmp3lame", "-b:a", "320k",
        str(target),
    ]  # fmt: skip


# --- the tools --------------------------------------------------------------------------------


@cache
def wavforge_command() -> tuple[str, ...]:
    """The console script of the running interpreter, so the benchmark measures this checkout."""
    script = Path(sys.executable).with_name("wavforge")
    return (str(script),) if script.exists() else (sys.executable, "-m", "wavforge")


def tool_command(tool: str, src: Path, dst: Path) -> list[str]:
    """How each tool is asked to turn ``src`` into the WAV file ``dst``."""
    match tool:
        case "ffmpeg":
            return ["ffmpeg", "-v", "error", "-y", "-i", str(src), str(dst)]
        case "wavforge":
            return [*wavforge_command(), "convert-file", str(src), str(dst)]
        case "wavforge-loudness":
            return [*wavforge_command(), "convert-file", "--loudness", str(src), str(dst)]
        case "wavforge-peaks":
            return [*wavforge_command(), "convert-file", "--peaks", str(src), str(dst)]
        case "pydub":
            # audioop warns about its removal in 3.13 on every start; that is not our news.
            no_warning = ["-W", "ignore::DeprecationWarning"]
            return [sys.executable, *no_warning, "-c", PYDUB_PROGRAM, str(src), str(dst)]
    raise ValueError(f"unknown tool {tool!r}")


def startup_commands(clip: Path, scratch: Path) -> dict[str, list[str]]:
    """What start-up is compared with: the interpreter alone, the engine's two libraries
    loaded by it, ffmpeg and wavforge each converting the same 1-s file."""
    return {
        "python -c pass": [sys.executable, "-c", "pass"],
        "python -c 'import av, numpy'": [sys.executable, "-c", "import av, numpy"],
        f"ffmpeg, {STARTUP_SECONDS}-s file": tool_command("ffmpeg", clip, scratch / "ffmpeg.wav"),
        f"wavforge convert-file, {STARTUP_SECONDS}-s file": tool_command(
            "wavforge", clip, scratch / "wavforge.wav"
        ),
    }


def compile_bytecode() -> str:
    """Compile the wavforge package the benchmark runs, as ``pip install`` does (see
    ``tests/support/bytecode.py``); its dependencies were compiled when they were installed."""
    try:
        compiled = compile_packages("wavforge")
    except ModuleNotFoundError as error:
        raise ToolFailed(f"{error} by {sys.executable}") from error
    return f"compiled before the runs ({compiled[0]})" if compiled else "could not compile wavforge"


def measure(argv: Sequence[str], log: Path) -> Run:
    """Run one process to completion; time it and read its peak RSS from the kernel.

    ``os.wait4`` reaps the child itself, which is the only way to get its ``rusage`` alone
    (``RUSAGE_CHILDREN`` would mix in every earlier run). ``ru_maxrss`` is the maximum over the
    process and the descendants it waited for (pydub's ffmpeg child, for one), in KiB on Linux.
    stderr goes to a file rather than a pipe that nobody reads while we wait.
    """
    with log.open("wb") as stderr:
        start = time.perf_counter()
        try:
            process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr
            )
        except OSError as error:
            raise ToolFailed(f"cannot start {shlex.join(argv)}: {error}") from None
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)  # tell Popen it has been reaped
    if process.returncode != 0:
        raise ToolFailed(failure_message(argv, process.returncode, log.read_text(errors="replace")))
    cpu = usage.ru_utime + usage.ru_stime
    return Run(seconds=seconds, peak_rss_mb=usage.ru_maxrss / 1024, cpu_seconds=cpu)


def run_checked(argv: Sequence[str]) -> None:
    """Run a helper command (not a measured one), failing loudly with its stderr."""
    completed = subprocess.run(argv, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise ToolFailed(failure_message(argv, completed.returncode, completed.stderr))


def failure_message(argv: Sequence[str], returncode: int, stderr: str) -> str:
    tail = "\n".join(stderr.strip().splitlines()[-15:])
    return f"exit status {returncode}: {shlex.join(argv)}\n{tail}"


def convert(
    tool: str, src: Path, scratch: Path, reference: str | None = None
) -> tuple[Run, Check | None]:
    """Run ``tool`` once on ``src``, check its WAV against ``reference`` if given, delete it.

    Deleting after every run keeps each run writing a fresh file, as a real conversion does.
    """
    dst = scratch / f"{tool}.wav"
    try:
        run = measure(tool_command(tool, src, dst), scratch / f"{tool}.stderr")
        check = compare(dst, reference) if reference is not None else None
    finally:
        dst.unlink(missing_ok=True)
    return run, check


@contextlib.contextmanager
def busy_load(cores: int, loads: list[Load]) -> Iterator[None]:
    """Keep ``cores`` cores busy with busy loops while the block runs; append what they got.

    The loops are ordinary processes at the same priority as the tools, as another program
    on the machine would be. One that dies early would make the rows a lie: the run stops.
    """
    started = time.perf_counter()
    loops = [
        subprocess.Popen([sys.executable, "-c", BUSY_PROGRAM], stdin=subprocess.DEVNULL)
        for _ in range(cores)
    ]
    try:
        time.sleep(BUSY_SETTLE_SECONDS)
        yield
        if any(loop.poll() is not None for loop in loops):
            raise ToolFailed("a busy loop of the background load exited early")
    finally:
        cpu = 0.0
        for loop in loops:
            if loop.poll() is None:
                loop.kill()
            _, _, usage = os.wait4(loop.pid, 0)
            loop.returncode = -9  # reaped above; tell Popen
            cpu += usage.ru_utime + usage.ru_stime
        loads.append(Load(cores, time.perf_counter() - started, cpu))


# --- checking the output ----------------------------------------------------------------------


def reference_digest(src: Path) -> str:
    """SHA-256 of ``ffmpeg -i src -f s16le -``: the samples wavforge promises, byte for byte.

    Streamed through a hash so that a 60-minute decode costs no memory here either.
    """
    argv = ["ffmpeg", "-v", "error", "-i", str(src), "-f", "s16le", "-"]
    with (
        tempfile.TemporaryFile() as stderr,  # a file: a full stderr pipe would stall the decode
        subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=stderr) as process,
    ):
        assert process.stdout is not None
        digest = hash_stream(process.stdout)
        process.wait()
        stderr.seek(0)
        if process.returncode != 0:
            message = stderr.read().decode(errors="replace")
            raise ToolFailed(failure_message(argv, process.returncode, message))
    return digest


def compare(wav: Path, reference: str) -> Check:
    """Compare the PCM payload only: headers legitimately differ (ffmpeg adds a LIST chunk)."""
    bits, digest = wav_payload_digest(wav)
    return Check(identical=digest == reference, bits=bits)


def wav_payload_digest(path: Path) -> tuple[int, str]:
    """Bits per sample and SHA-256 of the ``data`` chunk of a RIFF/WAVE file.

    A data size of 0 or 0xFFFFFFFF is what streaming writers leave when they cannot seek back;
    then the payload runs to the end of the file.
    """
    with path.open("rb") as file:
        riff, _, wave = struct.unpack("<4sI4s", file.read(12))
        if riff not in (b"RIFF", b"RF64") or wave != b"WAVE":
            raise ToolFailed(f"{path.name} is not a WAV file")
        bits = 0
        while header := file.read(8):
            chunk_id, size = struct.unpack("<4sI", header)
            if chunk_id == b"data":
                return bits, hash_stream(file, None if size in (0, 0xFFFFFFFF) else size)
            body = file.read(size + size % 2)  # chunks are padded to an even length
            if chunk_id == b"fmt ":
                (bits,) = struct.unpack_from("<H", body, 14)
    raise ToolFailed(f"{path.name} has no data chunk")


def hash_stream(stream: IO[bytes], limit: int | None = None) -> str:
    """SHA-256 of the next ``limit`` bytes of ``stream`` (all of it if None), read in chunks."""
    digest = hashlib.sha256()
    remaining = limit
    while remaining is None or remaining > 0:
        block = stream.read(CHUNK if remaining is None else min(CHUNK, remaining))
        if not block:
            break
        digest.update(block)
        if remaining is not None:
            remaining -= len(block)
    return digest.hexdigest()


# --- the two benchmarks -----------------------------------------------------------------------


def timed_benchmark(
    src: Path, minutes: int, settings: Settings, scratch: Path, console: Console
) -> dict[str, Result]:
    """Every tool ``settings.runs`` times on ``src``, taking turns, after one untimed round.

    The untimed round warms the page cache and bytecode caches for everyone and is the one whose
    output gets checked, so checking never eats into a timed run.
    """
    console.rule(f"{minutes}-min input: {settings.runs} timed runs per tool")
    reference = reference_digest(src)
    results = {tool: Result(tool, minutes) for tool in settings.tools}
    for tool in settings.tools:
        _, check = convert(tool, src, scratch, reference)
        results[tool].check = check
        console.print(f"  {tool:<9} bit-identical: {check}")
    for number in range(1, settings.runs + 1):
        for tool in settings.tools:
            run, _ = convert(tool, src, scratch)
            results[tool].runs.append(run)
        summary = "  ".join(f"{t} {results[t].runs[-1].seconds:6.2f} s" for t in settings.tools)
        console.print(f"  run {number}/{settings.runs}  {summary}")
    return results


def busy_benchmark(
    src: Path, minutes: int, settings: Settings, scratch: Path, console: Console, loads: list[Load]
) -> dict[str, Result]:
    """ffmpeg and wavforge taking turns again, ``settings.runs`` times each, while busy loops
    keep ``settings.busy_cores`` cores occupied. Outputs were checked in the free rounds."""
    cores = settings.busy_cores
    console.rule(f"{minutes}-min input: {settings.runs} runs each with {cores} core(s) busy")
    tools = (REFERENCE, "wavforge")
    results = {tool: Result(tool, minutes) for tool in tools}
    with busy_load(cores, loads):
        for number in range(1, settings.runs + 1):
            for tool in tools:
                run, _ = convert(tool, src, scratch)
                results[tool].runs.append(run)
            summary = "  ".join(f"{t} {results[t].runs[-1].seconds:6.2f} s" for t in tools)
            console.print(f"  run {number}/{settings.runs}  {summary}")
    console.print(f"  background load: {loads[-1]}")
    return results


def startup_benchmark(
    clip: Path, settings: Settings, scratch: Path, console: Console
) -> dict[str, Result]:
    """Each start-up command ``settings.startup_runs`` times, taking turns, after one untimed
    round; the conversions' outputs are deleted after each run, as in the timed rounds."""
    console.rule(f"start-up: {settings.startup_runs} runs per command")
    commands = startup_commands(clip, scratch)
    results = {label: Result(label, 0) for label in commands}
    for number in range(settings.startup_runs + 1):
        for label, argv in commands.items():
            run = measure(argv, scratch / "startup.stderr")
            if number:
                results[label].runs.append(run)
            for wav in scratch.glob("*.wav"):
                wav.unlink()
    for label, result in results.items():
        console.print(f"  {label:<36} median {result.median * 1000:6.1f} ms")
    return results


def memory_benchmark(
    src: Path, minutes: int, settings: Settings, scratch: Path, console: Console
) -> dict[str, Result]:
    """Each tool once on the long input, for its peak RSS; the output is checked afterwards."""
    console.rule(f"{minutes}-min input: memory run")
    if "pydub" in settings.tools:
        console.print(
            "[yellow]pydub holds the whole decode in memory: expect gigabytes of RSS "
            "(--no-pydub leaves it out)[/]"
        )
    reference = reference_digest(src)
    results = {}
    for tool in settings.tools:
        run, check = convert(tool, src, scratch, reference)
        results[tool] = Result(tool, minutes, [run], check)
        console.print(
            f"  {tool:<9} {run.seconds:7.2f} s  peak RSS {run.peak_rss_mb:8.1f} MB  "
            f"bit-identical: {check}"
        )
    return results


# --- judging ----------------------------------------------------------------------------------


def pair_text(result: Result, results: dict[str, Result]) -> str:
    return f"{median_pair_ratio(result, results[REFERENCE]):.2f}x"


def startup_result(startup: dict[str, Result]) -> Result:
    """The wavforge row of the start-up table."""
    (result,) = (result for label, result in startup.items() if label.startswith("wavforge"))
    return result


def ratio_of_medians(result: Result, reference: Result) -> float:
    return result.median / reference.median


def median_pair_ratio(result: Result, reference: Result) -> float:
    """Median of run-by-run ratios: each pair ran back to back, so shared drift cancels out."""
    pairs = zip(result.times, reference.times, strict=True)
    return statistics.median(mine / theirs for mine, theirs in pairs)


def cost_text(result: Result, without: Result) -> tuple[float, str]:
    """What an optional pass (a meter) adds to the conversion: the median of back-to-back
    wall-time pairs, which the bar judges, and the same over CPU time beside it. CPU time
    barely moves when other work shares the cores, so on a busy machine it tells a real cost
    from noise in the wall time."""
    wall = median_pair_ratio(result, without) - 1
    pairs = zip(result.cpu_times, without.cpu_times, strict=True)
    cpu = statistics.median(mine / theirs for mine, theirs in pairs) - 1
    return wall, f"{wall:+.1%} wall, {cpu:+.1%} CPU (with / without, pairs)"


def bar_input(timed: dict[int, dict[str, Result]]) -> int:
    """The speed bars are set on the 20-min input; a run without one is judged on its longest."""
    return SPEED_BAR_MINUTES if SPEED_BAR_MINUTES in timed else max(timed)


def judge(
    timed: dict[int, dict[str, Result]],
    memory: dict[str, Result],
    busy: dict[int, dict[str, Result]] | None = None,
    startup: dict[str, Result] | None = None,
    busy_cores: int = 1,
) -> list[Bar]:
    """The bars, each with the number it was judged on."""
    minutes = bar_input(timed)
    where = f"{minutes}-min file"
    if minutes != SPEED_BAR_MINUTES:
        where += f" (the bar is set on {SPEED_BAR_MINUTES} min)"
    results = timed[minutes]
    wavforge = results["wavforge"]

    speed = ratio_of_medians(wavforge, results[REFERENCE])
    claim = f"wavforge ≤ {SPEED_BAR:.1f}x ffmpeg on the {where}, cores free"
    bars = [Bar(claim, f"{speed:.2f}x (pairs {pair_text(wavforge, results)})", speed <= SPEED_BAR)]

    cores = f"{max(busy_cores, 1)} core{'s' if busy_cores > 1 else ''} busy"
    claim = f"wavforge ≤ {BUSY_SPEED_BAR:.1f}x ffmpeg on the {where}, {cores}"
    if busy and minutes in busy:
        loaded = busy[minutes]
        speed = ratio_of_medians(loaded["wavforge"], loaded[REFERENCE])
        measured = f"{speed:.2f}x (pairs {pair_text(loaded['wavforge'], loaded)})"
        bars.append(Bar(claim, measured, speed <= BUSY_SPEED_BAR))
    else:
        bars.append(Bar(claim, "not measured (--busy-cores 0)", None))

    claim = f"wavforge convert-file start-up ≤ {STARTUP_BAR:.2f} s ({STARTUP_SECONDS}-s file)"
    if startup:
        start = startup_result(startup).median
        bars.append(Bar(claim, f"{start:.3f} s (median)", start <= STARTUP_BAR))
    else:
        bars.append(Bar(claim, "not measured", None))

    memory_minutes = memory["wavforge"].minutes
    rss = memory["wavforge"].peak_rss_mb
    bars.append(
        Bar(f"wavforge peak RSS ≤ {RSS_BAR_MB:.0f} MB on the {memory_minutes}-min file",
            f"{rss:.1f} MB", rss <= RSS_BAR_MB)
    )  # fmt: skip

    claim = f"loudness measurement ≤ {LOUDNESS_BAR:.0%} of conversion time on the {where}"
    if "wavforge-loudness" in results:
        cost, measured = cost_text(results["wavforge-loudness"], wavforge)
        bars.append(Bar(claim, measured, cost <= LOUDNESS_BAR))
    else:
        bars.append(Bar(claim, "not measured", None))

    claim = f"waveform peaks ≤ {PEAKS_BAR:.0%} of conversion time on the {where}"
    if "wavforge-peaks" in results:
        cost, measured = cost_text(results["wavforge-peaks"], wavforge)
        bars.append(Bar(claim, measured, cost <= PEAKS_BAR))
    else:
        bars.append(Bar(claim, "not measured", None))

    claim = f"wavforge ≥ {PYDUB_BAR:.0f}x faster than pydub on the {where}"
    if "pydub" in results:
        speedup = ratio_of_medians(results["pydub"], wavforge)
        measured = f"{speedup:.2f}x (pydub time / wavforge time)"
        bars.append(Bar(claim, measured, speedup >= PYDUB_BAR))
    else:
        bars.append(Bar(claim, "not measured (--no-pydub)", None))
    return bars


# --- tables -----------------------------------------------------------------------------------

TIMED_HEADER = (
    "input", "tool", "median s", "x ffmpeg", "x ffmpeg (pairs)",
    "min s", "max s", "peak RSS MB", "bit-identical",
)  # fmt: skip
MEMORY_HEADER = ("input", "tool", "wall s", "peak RSS MB", "bit-identical")
STARTUP_HEADER = ("command", "median ms", "min ms", "max ms", "x python -c pass")
BAR_HEADER = ("bar", "measured", "verdict")


def timed_rows(timed: dict[int, dict[str, Result]]) -> list[tuple[str, ...]]:
    """One row per input and tool; ratios are to ffmpeg on the same input."""
    rows: list[tuple[str, ...]] = []
    for minutes, results in timed.items():
        reference = results[REFERENCE]
        for tool, result in results.items():
            rows.append(
                (
                    f"{minutes} min",
                    tool,
                    f"{result.median:.2f}",
                    f"{ratio_of_medians(result, reference):.2f}x",
                    f"{median_pair_ratio(result, reference):.2f}x",
                    f"{min(result.times):.2f}",
                    f"{max(result.times):.2f}",
                    f"{result.peak_rss_mb:.1f}",
                    "-" if result.check is None else str(result.check),
                )
            )
    return rows


def startup_rows(startup: dict[str, Result]) -> list[tuple[str, ...]]:
    """One row per command, in milliseconds, each also over the bare interpreter's median."""
    interpreter = next(iter(startup.values())).median
    return [
        (
            label,
            f"{result.median * 1000:.1f}",
            f"{min(result.times) * 1000:.1f}",
            f"{max(result.times) * 1000:.1f}",
            f"{result.median / interpreter:.2f}x",
        )
        for label, result in startup.items()
    ]


def memory_rows(memory: dict[str, Result]) -> list[tuple[str, ...]]:
    return [
        (f"{r.minutes} min", tool, f"{r.median:.2f}", f"{r.peak_rss_mb:.1f}", str(r.check))
        for tool, r in memory.items()
    ]


def bar_rows(bars: Iterable[Bar]) -> list[tuple[str, ...]]:
    return [(bar.claim, bar.measured, bar.verdict) for bar in bars]


def rich_table(title: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> Table:
    """A console table."""
    table = Table(title=title, title_justify="left")
    for name, right in zip(header, numeric_columns(header, rows), strict=True):
        table.add_column(name, justify="right" if right else "left")
    for row in rows:
        table.add_row(*row)
    return table


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """The same table as GitHub-flavoured markdown."""
    align = ["---:" if right else "---" for right in numeric_columns(header, rows)]
    return ["| " + " | ".join(cells) + " |" for cells in (header, align, *rows)]


def numeric_columns(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[bool]:
    """Which columns hold only numbers (``2.45``, ``0.87x``): those align right, the rest left."""
    return [
        bool(rows) and all(NUMBER.fullmatch(row[index]) for row in rows)
        for index in range(len(header))
    ]


# --- the report -------------------------------------------------------------------------------


def machine_info(load_at_start: float) -> dict[str, str]:
    """What a reader needs to compare two reports: the box, how busy it was, every version."""
    import av  # only here: the benchmark itself never decodes with PyAV

    return {
        "nproc": str(len(os.sched_getaffinity(0))),
        "load average": f"{load_at_start:.2f} at start, {os.getloadavg()[0]:.2f} at end (1 min)",
        "CPU": cpu_model(),
        "memory": f"{memory_total_gb():.1f} GB",
        "OS": platform.platform(),
        "Python": platform.python_version(),
        "PyAV": f"{importlib.metadata.version('av')} (FFmpeg {av.ffmpeg_version_info})",
        "FFmpeg CLI": ffmpeg_version(),
        "wavforge": f"{importlib.metadata.version('wavforge')} at {git_revision()}",
        "pydub": package_version("pydub"),
    }


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def memory_total_gb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / MIB
    return float("nan")


def ffmpeg_version() -> str:
    output = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True, check=True)
    return output.stdout.split(" Copyright")[0].removeprefix("ffmpeg version ").strip()


def package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def git_revision() -> str:
    """The commit measured, flagged when src/ has uncommitted changes (it often does mid-rewrite).

    ``--no-optional-locks`` keeps ``git status`` from touching the index others are using.
    """
    root = Path(__file__).resolve().parent.parent
    git = ["git", "--no-optional-locks", "-C", str(root)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    if head.returncode != 0:
        return "unknown revision"
    status = subprocess.run(
        [*git, "status", "--porcelain", "--", "src"], capture_output=True, text=True
    )
    dirty = " + uncommitted changes in src/" if status.stdout.strip() else ""
    return f"{head.stdout.strip()}{dirty}"


def command_line() -> str:
    return shlex.join(["python", *sys.argv])


def report_head(title: str) -> list[str]:
    """A report's first lines: its title, when it ran and the exact command line."""
    when = f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC with:"
    return [f"# {title}", "", when, "", "```sh", command_line(), "```", ""]


def write_report(
    path: Path,
    machine: dict[str, str],
    timed: dict[int, dict[str, Result]],
    memory: dict[str, Result],
    bars: list[Bar],
    busy: dict[int, dict[str, Result]] | None = None,
    startup: dict[str, Result] | None = None,
    busy_cores: int = 1,
) -> None:
    """``report.md``: enough to reproduce the run and to read it without this script."""
    extra: list[str] = []
    if startup:
        extra += [
            "## Start-up",
            "",
            *markdown_table(STARTUP_HEADER, startup_rows(startup)),
            "",
        ]
    if busy:
        extra += [
            f"## Wall time with {busy_cores} core{'s' if busy_cores > 1 else ''} busy",
            "",
            *markdown_table(TIMED_HEADER, timed_rows(busy)),
            "",
        ]
    lines = [
        *report_head("Audio engine benchmark"),
        "## Machine",
        "",
        *markdown_table(("", "version / value"), list(machine.items())),
        "",
        "## Bars",
        "",
        *markdown_table(BAR_HEADER, bar_rows(bars)),
        "",
        "## Wall time",
        "",
        *markdown_table(TIMED_HEADER, timed_rows(timed)),
        "",
        *extra,
        "## Memory run",
        "",
        *markdown_table(MEMORY_HEADER, memory_rows(memory)),
        "",
        "![median wall time and peak RSS](engine.png)",
        "",
        "## How to read this",
        "",
        "- Every number is a whole process: start-up, decoding and writing the WAV.",
        "- The tools took turns (ffmpeg, wavforge, pydub, ffmpeg, ...) after one untimed round,",
        "  whose output is the one checked for bit-identity.",
        "- *x ffmpeg* is the tool's median over ffmpeg's median on the same input;",
        "  *x ffmpeg (pairs)* is the median of run-by-run ratios, which cancels drift shared by",
        "  back-to-back runs. When the two disagree, or min and max are far apart, the machine",
        "  was busy: compare the load average with nproc.",
        "- *peak RSS* is `ru_maxrss` from `wait4`: the maximum over the process **and the",
        "  descendants it waited for** (pydub's ffmpeg child, for one), not their sum.",
        "  In the timed table it is the largest over the runs.",
        "- *bit-identical* compares the WAV's `data` chunk with `ffmpeg -i in.mp3 -f s16le -`;",
        "  headers are ignored. A WAV that is not 16-bit says so, since it cannot match.",
        "- *Start-up* is each command's wall time on a 1-s input, the commands taking turns;",
        "  `python -c pass` is the interpreter alone and `import av, numpy` the two libraries",
        "  the engine cannot do without. wavforge's bytecode is compiled first, as an install",
        "  compiles it (*Machine*, wavforge bytecode).",
        "- The *busy* rows are ffmpeg and wavforge taking turns again while busy loops that the",
        "  benchmark starts itself keep cores occupied (*Machine*, background load): a decode",
        "  split across processes pays only where a core is free, and ffmpeg decodes on one.",
        "",
    ]
    path.write_text("\n".join(lines))


def plot(timed: dict[int, dict[str, Result]], memory: dict[str, Result], path: Path) -> None:
    """``engine.png``: median wall time per input with min/max whiskers, and peak RSS. Not
    drawn without matplotlib (the ``bench`` extra): the report holds every figure anyway."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # no display needed; must precede the pyplot import
        import matplotlib.pyplot as plt
    except ImportError:
        return

    figure, (time_axes, rss_axes) = plt.subplots(1, 2, figsize=(13, 5))
    plot_times(time_axes, timed)
    plot_memory(rss_axes, timed, memory)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def bar_offsets(tools: Sequence[str]) -> tuple[float, list[float]]:
    """Bar width and each tool's offset from its group's centre, for grouped bars."""
    width = 0.8 / len(tools)
    return width, [(index - (len(tools) - 1) / 2) * width for index in range(len(tools))]


def plot_times(axes: Any, timed: dict[int, dict[str, Result]]) -> None:
    """Grouped bars of median wall time, labelled above the whiskers so short bars stay legible."""
    lengths = sorted(timed)
    tools = list(timed[lengths[0]])
    width, offsets = bar_offsets(tools)
    for tool, offset in zip(tools, offsets, strict=True):
        results = [timed[minutes][tool] for minutes in lengths]
        xs = [group + offset for group in range(len(lengths))]
        medians = [r.median for r in results]
        whiskers = [
            [r.median - min(r.times) for r in results],
            [max(r.times) - r.median for r in results],
        ]
        axes.bar(xs, medians, width, yerr=whiskers, capsize=3, label=tool, color=COLORS[tool])
        for x, result in zip(xs, results, strict=True):
            axes.annotate(
                f"{result.median:.3g}", (x, max(result.times)), xytext=(0, 2),
                textcoords="offset points", ha="center", va="bottom", fontsize=8,
            )  # fmt: skip
    axes.set_xticks(range(len(lengths)), [f"{minutes}-min input" for minutes in lengths])
    axes.set_ylabel("median wall time, s (whiskers: min to max)")
    axes.set_title("Wall time per conversion (lower is better)")
    axes.legend(loc="upper left")


def plot_memory(axes: Any, timed: dict[int, dict[str, Result]], memory: dict[str, Result]) -> None:
    """Grouped bars of peak RSS, timed inputs then the memory run, against the wavforge bar.

    Log scale, because pydub's peak grows with the track and would flatten everything else.
    """
    groups = [timed[minutes] for minutes in sorted(timed)] + [memory]
    labels = [f"{minutes}-min input" for minutes in sorted(timed)]
    labels.append(f"{memory['wavforge'].minutes}-min input\n(memory run)")
    tools = list(memory)
    width, offsets = bar_offsets(tools)
    highest = RSS_BAR_MB
    for tool, offset in zip(tools, offsets, strict=True):
        xs = [group + offset for group in range(len(groups))]
        peaks = [group[tool].peak_rss_mb for group in groups]
        bars = axes.bar(xs, peaks, width, label=tool, color=COLORS[tool])
        axes.bar_label(bars, fmt="%.0f", fontsize=8, padding=2)
        highest = max(highest, *peaks)
    axes.axhline(
        RSS_BAR_MB,
        color="grey",
        linestyle="--",
        linewidth=1,
        label=f"wavforge bar, {RSS_BAR_MB:.0f} MB",
    )
    axes.set_yscale("log")
    axes.set_ylim(10, highest * 4)  # headroom for the legend and the labels
    axes.set_xticks(range(len(groups)), labels)
    axes.set_ylabel("peak RSS, MB (log scale)")
    axes.set_title("Peak memory per conversion (lower is better)")
    axes.legend(loc="upper left")


# --- main -------------------------------------------------------------------------------------


def preflight(settings: Settings) -> None:
    """Fail before the first encode, not twenty minutes in, when a tool is missing."""
    if shutil.which("ffmpeg") is None:
        raise ToolFailed("ffmpeg is not on PATH")
    if "pydub" in settings.tools and importlib.util.find_spec("pydub") is None:
        raise ToolFailed(f"pydub is not importable by {sys.executable} (or pass --no-pydub)")


def run(settings: Settings, console: Console) -> None:
    """Encode the inputs, run the benchmarks, print the tables, write the report and chart."""
    preflight(settings)
    load_at_start = os.getloadavg()[0]  # other work on the box shows up as spread in the runs
    inputs = settings.out / "inputs"
    scratch = settings.out / "scratch"
    scratch.mkdir(parents=True, exist_ok=True)

    bytecode = compile_bytecode()

    clip = ensure_clip(inputs, STARTUP_SECONDS, f"{STARTUP_SECONDS}s", console)
    startup = startup_benchmark(clip, settings, scratch, console)
    sources = {minutes: ensure_input(inputs, minutes, console) for minutes in settings.minutes}
    timed = {
        minutes: timed_benchmark(src, minutes, settings, scratch, console)
        for minutes, src in sources.items()
    }
    loads: list[Load] = []
    busy = {
        minutes: busy_benchmark(src, minutes, settings, scratch, console, loads)
        for minutes, src in sources.items()
        if settings.busy_cores
    }
    memory_src = ensure_input(inputs, settings.memory_minutes, console)
    memory = memory_benchmark(memory_src, settings.memory_minutes, settings, scratch, console)
    bars = judge(timed, memory, busy, startup, settings.busy_cores)

    console.print()
    console.print(rich_table("Start-up", STARTUP_HEADER, startup_rows(startup)))
    console.print(rich_table("Wall time, cores free", TIMED_HEADER, timed_rows(timed)))
    if busy:
        title = f"Wall time, {settings.busy_cores} core(s) busy"
        console.print(rich_table(title, TIMED_HEADER, timed_rows(busy)))
    console.print(rich_table("Memory run", MEMORY_HEADER, memory_rows(memory)))
    console.print(rich_table("Bars", BAR_HEADER, bar_rows(bars)))

    machine = machine_info(load_at_start)
    machine["wavforge bytecode"] = bytecode
    machine["background load"] = (
        "; ".join(f"{minutes} min: {load}" for minutes, load in zip(busy, loads, strict=True))
        or "none (--busy-cores 0)"
    )
    write_report(
        settings.out / "report.md",
        machine,
        timed,
        memory,
        bars,
        busy=busy,
        startup=startup,
        busy_cores=settings.busy_cores,
    )
    (settings.out / "engine.png").unlink(missing_ok=True)  # never a stale plot beside the report
    plot(timed, memory, settings.out / "engine.png")
    shutil.rmtree(scratch)  # only stderr logs are left in it, and they were all empty of news
    for name in ("report.md", "engine.png"):
        if (settings.out / name).exists():
            console.print(f"wrote {settings.out / name}")
        else:
            hint = "matplotlib is not installed (pip install '.[bench]')"
            console.print(f"[yellow]no {name}: {escape(hint)}[/]")


def main(argv: Sequence[str] | None = None) -> int:
    """Exit 0 whatever the bars say (this is a report, not a test); 1 if a tool fails to run."""
    settings = parse_args(argv)
    console = Console(width=shutil.get_terminal_size((120, 24)).columns)  # 120 when piped
    try:
        run(settings, console)
    except ToolFailed as error:
        console.print(
            f"[red]a tool failed to run, so there is nothing to report:[/] {escape(str(error))}"
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
