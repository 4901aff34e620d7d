"""Conversions in killable child processes: real children, real signals, real files.

Every test drives ``wavforge.audio.isolation`` the way the worker does and then checks the
things that matter after a failure: the right error, no partial output, no surviving process,
and a converter that works again for the next task.
"""

from __future__ import annotations

import math
import os
import random
import signal
import subprocess
import sys
import threading
import time
import wave
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from wavforge.audio import engine
from wavforge.audio.errors import ConversionFailed, LimitExceeded, UnsupportedAudio
from wavforge.audio.isolation import RECOMMENDED_MEMORY_BYTES, ConverterPool, IsolatedConverter
from wavforge.audio.options import Limits

from audiogen import ffmpeg_s16, make_flac, make_mp3, wav_pcm_bytes
from conftest import needs_two_cpus
from support.processes import proc_stat

LIMITS: dict[str, Any] = {
    "memory_bytes": RECOMMENDED_MEMORY_BYTES,
    "cpu_seconds": 30.0,
    "wall_seconds": 30.0,
    "heartbeat_seconds": 0.1,
}


@dataclass(frozen=True)
class Fixtures:
    mp3: Path
    flac: Path
    long_wav: Path  # takes the child ~0.3 s, so it is still writing when it is interrupted
    junk: Path


def noise_wav(path: Path, seconds: float) -> Path:
    """A long 16-bit stereo WAV of seeded noise, written directly (encoding it would be slow)."""
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(44100)
        wav.writeframes(random.Random(7).randbytes(int(seconds * 44100) * 4))
    return path


@pytest.fixture(scope="module")
def audio(tmp_path_factory: pytest.TempPathFactory) -> Fixtures:
    folder = tmp_path_factory.mktemp("isolation-audio")
    junk = folder / "junk.mp3"
    junk.write_bytes(b"this is a text file, not audio\n" * 200)
    return Fixtures(
        mp3=make_mp3(folder / "song.mp3", 1.0),
        flac=make_flac(folder / "song.flac", 1.0),
        long_wav=noise_wav(folder / "long.wav", 60.0),
        junk=junk,
    )


@pytest.fixture(scope="module")
def shared() -> Iterator[IsolatedConverter]:
    """A converter for tests that do not harm their child, started once for the module."""
    converter = IsolatedConverter(**LIMITS)
    converter.start()
    yield converter
    converter.close()


@pytest.fixture
def converters() -> Iterator[Callable[..., IsolatedConverter]]:
    """Make started converters (with LIMITS unless overridden) that are closed after the test."""
    made: list[IsolatedConverter] = []

    def make(**overrides: Any) -> IsolatedConverter:
        converter = IsolatedConverter(**(LIMITS | overrides))
        converter.start()
        made.append(converter)
        return converter

    yield make
    for converter in made:
        converter.close()


def leftovers(dst: Path) -> list[str]:
    """The output and the engine's helper files, if any survived."""
    return sorted(p.name for p in dst.parent.iterdir() if p.name.startswith(dst.name))


def gone(pid: int) -> bool:
    """True once the process no longer runs (absent, or a zombie nobody has reaped yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def running_in_group(pgid: int) -> list[int]:
    """Processes of the group that can still run (zombies of killed helpers do not count)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, _, group = stat.read_text().rsplit(")", 1)[1].split()[:3]
        except OSError:
            continue
        if int(group) == pgid and state != "Z":
            found.append(int(stat.parent.name))
    return found


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def live_pid(converter: IsolatedConverter) -> int:
    assert converter.pid is not None
    return converter.pid


def test_pool_output_is_bit_exact_and_the_child_is_reused(audio: Fixtures, tmp_path: Path) -> None:
    pool = ConverterPool(2, **LIMITS)
    pool.start()
    try:
        assert len(pool.pids()) == 2
        fractions: list[float] = []
        with pool.lease() as converter:
            result = converter.convert(audio.mp3, tmp_path / "a.wav", on_progress=fractions.append)
            first_pid = converter.pid
        channels, width, rate, pcm = wav_pcm_bytes(tmp_path / "a.wav")
        assert (channels, width, rate) == (2, 2, 44100)
        assert pcm == ffmpeg_s16(audio.mp3)
        assert result.frames * channels * width == len(pcm)
        assert fractions[-1] == 1.0

        with pool.lease() as converter:  # last in, first out: the warm child again
            converter.convert(audio.flac, tmp_path / "b.wav")
            assert converter.pid == first_pid
        assert wav_pcm_bytes(tmp_path / "b.wav")[3] == ffmpeg_s16(audio.flac)

        sources = [audio.mp3, audio.flac] * 2
        with ThreadPoolExecutor(4) as threads:  # more workers than children: leases wait
            done = threads.map(
                lambda job: pool.convert(job[1], tmp_path / f"t{job[0]}.wav"), enumerate(sources)
            )
            assert [r.frames for r in done] == [result.frames, 44100] * 2
        assert wav_pcm_bytes(tmp_path / "t2.wav")[3] == pcm
        assert len(set(pool.pids())) == 2
    finally:
        pool.close()


def test_child_killed_while_writing_leaves_nothing(
    audio: Fixtures, tmp_path: Path, converters: Callable[..., IsolatedConverter]
) -> None:
    converter = converters()
    victim = live_pid(converter)
    dst = tmp_path / "out.wav"
    seen_while_writing: list[str] = []

    def kill_mid_write(fraction: float) -> None:
        if 0 < fraction < 1 and not seen_while_writing:
            os.kill(victim, signal.SIGSTOP)  # freeze it mid-write so the partial file is certain
            seen_while_writing.extend(leftovers(dst))
            os.kill(victim, signal.SIGKILL)

    with pytest.raises(ConversionFailed) as failure:
        converter.convert(audio.long_wav, dst, on_progress=kill_mid_write, progress_interval=0.001)
    assert type(failure.value) is ConversionFailed
    assert str(failure.value) == "the decoder process died (signal SIGKILL)"
    assert seen_while_writing  # the child had started writing when it died
    assert leftovers(dst) == []

    converter.convert(audio.mp3, dst)
    assert live_pid(converter) != victim
    assert wav_pcm_bytes(dst)[3] == ffmpeg_s16(audio.mp3)


@needs_two_cpus
def test_kill_reaches_the_engines_helper_processes(
    tmp_path: Path, converters: Callable[..., IsolatedConverter]
) -> None:
    # Over two minutes of MP3 is decoded by the child plus a forked helper that writes into
    # the same WAV. The child's death must take the helper and the file along.
    src = tmp_path / "long.mp3"
    sine = "sine=frequency=440:duration=130:sample_rate=44100"
    encode = ["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", sine, "-b:a", "32k"]
    subprocess.run([*encode, str(src)], check=True)
    converter = converters()
    victim = live_pid(converter)
    dst = tmp_path / "out.wav"
    at_kill: list[list[int] | list[str]] = []

    def crash_while_split(fraction: float) -> None:
        group = running_in_group(victim)
        if 0 < fraction < 1 and not at_kill and len(group) >= 2:
            at_kill.extend([group, leftovers(dst)])
            os.kill(victim, signal.SIGKILL)  # the child only, as a segfault would

    with pytest.raises(ConversionFailed, match=r"^the decoder process died \(signal SIGKILL\)$"):
        converter.convert(
            src,
            dst,
            on_progress=crash_while_split,
            progress_interval=0.01,
            limits=Limits(parallelism=2),  # engine options travel to the child untouched
        )
    group, files = at_kill
    assert len(group) >= 2 and victim in group
    assert files == ["out.wav"]
    assert running_in_group(victim) == []
    assert leftovers(dst) == []


def test_heartbeat_continues_while_the_child_is_silent_then_it_is_killed(
    audio: Fixtures, tmp_path: Path, converters: Callable[..., IsolatedConverter]
) -> None:
    converter = converters(heartbeat_seconds=0.05)
    converter.convert(audio.mp3, tmp_path / "warm.wav")  # ready, so the job is really sent
    victim = live_pid(converter)
    os.kill(victim, signal.SIGSTOP)
    beats: list[float] = []
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            converter.convert(audio.mp3, tmp_path / "out.wav", on_progress=beats.append)
        except BaseException as error:
            outcome.append(error)

    worker = threading.Thread(target=run)
    worker.start()
    assert wait_until(lambda: len(beats) >= 4)  # the lease is renewed although nothing arrives
    os.kill(victim, signal.SIGKILL)
    worker.join(timeout=10)

    assert set(beats) == {0.0}
    assert [type(e) for e in outcome] == [ConversionFailed]
    assert str(outcome[0]) == "the decoder process died (signal SIGKILL)"
    assert leftovers(tmp_path / "out.wav") == []
    assert gone(victim) and converter.pid is None


def test_a_sources_peaks_are_measured_in_the_child_as_in_process(
    audio: Fixtures, tmp_path: Path, shared: IsolatedConverter
) -> None:
    pid = live_pid(shared)
    beats: list[float] = []
    isolated = shared.measure_peaks(audio.flac, on_progress=beats.append, limits=Limits())
    assert isolated.document() == engine.measure_peaks(audio.flac).document() is not None
    assert (
        isolated.document() == shared.convert(audio.flac, tmp_path / "out.wav").waveform.document()
    )
    assert beats[-1] == 1.0 and shared.pid == pid
    with pytest.raises(UnsupportedAudio):
        shared.measure_peaks(audio.junk)
    with pytest.raises(LimitExceeded, match="the limit is"):
        shared.measure_peaks(audio.flac, limits=Limits(max_duration_seconds=0.5))
    assert shared.pid == pid  # ordinary failures do not cost the child


def test_non_audio_is_unsupported_with_the_engine_message(
    audio: Fixtures, tmp_path: Path, shared: IsolatedConverter
) -> None:
    with pytest.raises(UnsupportedAudio) as in_process:
        engine.convert(audio.junk, tmp_path / "direct.wav")
    pid = live_pid(shared)
    with pytest.raises(UnsupportedAudio) as isolated:
        shared.convert(audio.junk, tmp_path / "out.wav")
    assert type(isolated.value) is type(in_process.value)
    assert str(isolated.value) == str(in_process.value)
    assert shared.pid == pid  # an ordinary failure does not cost the child
    assert leftovers(tmp_path / "out.wav") == []


def test_wall_clock_limit_kills_a_stuck_child(
    audio: Fixtures, tmp_path: Path, converters: Callable[..., IsolatedConverter]
) -> None:
    converter = converters(wall_seconds=0.5)
    converter.convert(audio.mp3, tmp_path / "warm.wav")
    stuck = live_pid(converter)
    os.kill(stuck, signal.SIGSTOP)
    started = time.monotonic()
    with pytest.raises(LimitExceeded, match=r"^conversion took longer than 0\.5 seconds$"):
        converter.convert(audio.mp3, tmp_path / "out.wav")
    assert 0.5 <= time.monotonic() - started < 3
    assert gone(stuck) and converter.pid is None
    assert leftovers(tmp_path / "out.wav") == []


def test_memory_limit_fails_only_that_task(
    audio: Fixtures,
    tmp_path: Path,
    converters: Callable[..., IsolatedConverter],
    shared: IsolatedConverter,
) -> None:
    # 64 MiB of address space is far below what a child with numpy and PyAV already maps, so
    # the decoder's first allocation fails inside the child.
    starved = converters(memory_bytes=64 * 1024 * 1024)
    first = live_pid(starved)
    with pytest.raises(LimitExceeded, match=r"^conversion exceeded its memory limit$"):
        starved.convert(audio.flac, tmp_path / "out.wav")
    assert leftovers(tmp_path / "out.wav") == []
    assert wait_until(lambda: gone(first))  # a child that ran out of memory is replaced

    shared.convert(audio.flac, tmp_path / "out.wav")
    assert wav_pcm_bytes(tmp_path / "out.wav")[3] == ffmpeg_s16(audio.flac)


class LeaseLost(Exception):
    """Stands in for the worker's exception when another worker took the task over."""


def test_exception_from_on_progress_is_reraised_and_the_child_killed(
    audio: Fixtures, tmp_path: Path, converters: Callable[..., IsolatedConverter]
) -> None:
    converter = converters()
    victim = live_pid(converter)
    dst = tmp_path / "out.wav"
    lost = LeaseLost("task belongs to another worker now")

    def renew(fraction: float) -> None:
        if 0 < fraction < 1:
            raise lost

    with pytest.raises(LeaseLost) as raised:
        converter.convert(audio.long_wav, dst, on_progress=renew, progress_interval=0.001)
    assert raised.value is lost
    assert gone(victim)
    assert converter.pid is None  # restarted lazily, by the next conversion
    assert leftovers(dst) == []
    converter.convert(audio.mp3, dst)
    assert live_pid(converter) != victim


def test_child_is_isolated_and_limited(
    audio: Fixtures, tmp_path: Path, shared: IsolatedConverter
) -> None:
    shared.convert(audio.mp3, tmp_path / "out.wav")
    pid = live_pid(shared)
    assert os.getsid(pid) == pid and os.getpgid(pid) == pid  # killpg reaches its helpers
    status = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    assert status["Threads"].strip() == "1"  # so the engine may fork
    fork_server = int(status["PPid"])  # every child is a fork of the warm template
    assert (proc_stat(fork_server) or [])[1:2] == [str(os.getpid())]

    limits = {
        line[:26].strip(): line[26:].split()
        for line in Path(f"/proc/{pid}/limits").read_text().splitlines()[1:]
    }
    assert limits["Max core file size"][:2] == ["0", "0"]
    assert limits["Max address space"][:2] == [str(RECOMMENDED_MEMORY_BYTES)] * 2
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    used = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
    soft, hard = limits["Max cpu time"][:2]
    budget = LIMITS["cpu_seconds"]
    assert math.ceil(used + budget) - 1 <= int(soft) <= math.ceil(used + budget)  # per task
    assert hard == "unlimited"


def test_cpu_limit_signal_is_reported_as_a_limit(
    audio: Fixtures, tmp_path: Path, converters: Callable[..., IsolatedConverter]
) -> None:
    # Burning real CPU seconds would slow the suite down; SIGXCPU is exactly what the kernel
    # sends when the RLIMIT_CPU checked above runs out.
    converter = converters()
    victim = live_pid(converter)

    def over_budget(fraction: float) -> None:
        if 0 < fraction < 1:
            os.kill(victim, signal.SIGXCPU)

    with pytest.raises(LimitExceeded, match=r"^conversion exceeded its CPU time limit$"):
        converter.convert(
            audio.long_wav, tmp_path / "out.wav", on_progress=over_budget, progress_interval=0.001
        )
    assert leftovers(tmp_path / "out.wav") == []


def test_closing_the_pool_leaves_no_child_processes(audio: Fixtures, tmp_path: Path) -> None:
    pool = ConverterPool(2, **LIMITS)
    pool.start()
    pool.convert(audio.mp3, tmp_path / "out.wav")
    pids = pool.pids()
    with pool.lease() as busy:
        pool.close()  # a busy converter finishes its task and is closed when released
        busy.convert(audio.flac, tmp_path / "busy.wav")
    pool.close()
    assert pool.pids() == []
    for pid in pids:
        assert gone(pid)
        with pytest.raises(ProcessLookupError):
            os.killpg(pid, 0)
    with pytest.raises(RuntimeError, match="closed"):
        pool.convert(audio.mp3, tmp_path / "late.wav")


def test_child_dies_with_its_parent(audio: Fixtures, tmp_path: Path) -> None:
    # The child is requested from a thread that then exits: that must not kill it (the parent
    # death signal follows the forking thread), while the parent process dying must.
    script = (
        "import sys, threading, time\n"
        "from pathlib import Path\n"
        "from wavforge.audio.isolation import IsolatedConverter\n"
        "c = IsolatedConverter(memory_bytes=None, cpu_seconds=None, wall_seconds=None)\n"
        "t = threading.Thread(target=c.start)\n"
        "t.start(); t.join()\n"
        "c.convert(Path(sys.argv[1]), Path(sys.argv[2]))\n"
        "print(c.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    command = [sys.executable, "-c", script, str(audio.mp3), str(tmp_path / "out.wav")]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as parent:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert not gone(child)
        parent.kill()
        parent.wait(timeout=10)
    assert wait_until(lambda: gone(child))
