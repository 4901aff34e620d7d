"""``wavforge convert-file``: one local file to WAV with the service's engine, no server.

A command run over many files, so it starts fast. ``wavforge.cli.main`` hands its arguments
to :func:`parse` first; when they are plain (known options, each once, plain numbers, an
input that exists) the conversion runs at once, without Typer, click and pydantic, which
together take longer to import than the engine. Anything else (``--help``, a typo, a missing
argument, a file that is not there) goes to the Typer command in ``wavforge.cli.service``,
which declares the options and their help and words every usage error. tests/test_cli.py
checks that :func:`parse` reads every argument as that command does, or leaves it to it.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from wavforge.cli.common import EXIT_USAGE, fail, settings

if TYPE_CHECKING:
    from wavforge.audio import ConversionResult, Limits, OutputOptions

__all__ = ["FLAGS", "LIMIT_SETTINGS", "VALUE_OPTIONS", "Request", "main", "parse", "run"]


@dataclass(frozen=True)
class Request:
    """What the command line asks for; the fields are the Typer command's parameters."""

    source: Path
    target: Path
    bit_depth: int | None = None
    as_float: bool = False
    sample_rate: int | None = None
    dither: str | None = None
    preset: str | None = None
    loudness: bool | None = None
    peaks: bool = False
    as_json: bool = False
    force: bool = False


# The options of the Typer command: those that take a value (and the field it fills), and the
# flags (with the field and the value each sets).
VALUE_OPTIONS = {
    "--bit-depth": "bit_depth",
    "--sample-rate": "sample_rate",
    "--dither": "dither",
    "--preset": "preset",
}
INTEGERS = frozenset({"bit_depth", "sample_rate"})
FLAGS = {
    "--float": ("as_float", True),
    "--loudness": ("loudness", True),
    "--no-loudness": ("loudness", False),
    "--peaks": ("peaks", True),
    "--json": ("as_json", True),
    "--force": ("force", True),
}

# The settings behind a conversion's limits (``Settings.audio_limits``), as environment
# variables. Settings are loaded only when one of them is set: loading takes a tenth of a
# second, and the other ``WAVFORGE_*`` settings are the service's, not this command's.
LIMIT_SETTINGS = frozenset(
    {
        "WAVFORGE_MAX_DURATION_SECONDS",
        "WAVFORGE_MAX_OUTPUT_BYTES",
        "WAVFORGE_RF64_THRESHOLD_BYTES",
        "WAVFORGE_DECODE_PROCESSES",
    }
)

# The output options' names on this command line, for OutputOptions.parse's messages.
_OPTION_NAMES = {
    "bit_depth": "--bit-depth",
    "sample_format": "--float",
    "sample_rate": "--sample-rate",
    "dither": "--dither",
    "preset": "--preset",
}


def main(args: Sequence[str]) -> bool:
    """Run the command on ``args`` (those after ``convert-file``) if :func:`parse` takes them,
    and end the process; return False, having done nothing, when they are Typer's to read.

    The process ends as Typer ends a command (the command's status, 130 on Ctrl-C, a quiet 1
    when stdout's reader has gone, as in ``| head``), but without the interpreter's teardown:
    with numpy and FFmpeg loaded that takes 15 ms, a tenth of the whole command, and by then
    everything is written, flushed and closed. An unexpected error still ends as usual, with
    its traceback.
    """
    request = parse(args)
    if request is None:
        return False
    try:
        run(request)
        sys.stdout.flush()
        status = 0
    except SystemExit as exit:  # fail()
        status = exit.code if isinstance(exit.code, int) else 1
    except KeyboardInterrupt:
        status = 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        status = 1
    _leave(status)


def _leave(status: int) -> NoReturn:
    """Flush what Python still buffers and end the process at once."""
    import logging  # loaded with PyAV already; its handlers are flushed at a normal exit too

    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(status)


def parse(args: Sequence[str]) -> Request | None:
    """The request ``args`` make, or None to leave them to the Typer command.

    Only what click reads in one way is taken: ``--name VALUE``, ``--name=VALUE`` and flags,
    each at most once, anywhere among exactly two arguments, of which the first names a
    readable file that is not a folder; numbers in plain decimal digits; values that do not
    start with ``-``. Whatever else is given, right or wrong, is Typer's to read or refuse.
    """
    fields: dict[str, object] = {}
    arguments: list[str] = []
    remaining = iter(args)
    setting: object
    for arg in remaining:
        if not arg.startswith("-"):
            arguments.append(arg)
            continue
        name, equals, value = arg.partition("=")
        if name in FLAGS and not equals:
            field, setting = FLAGS[name]
        elif name in VALUE_OPTIONS:
            field = VALUE_OPTIONS[name]
            value = value if equals else next(remaining, "")
            if not value or value.startswith("-"):
                return None
            if field in INTEGERS and not _plain_number(value):
                return None
            setting = int(value) if field in INTEGERS else value
        else:
            return None
        if field in fields:
            return None
        fields[field] = setting
    if len(arguments) != 2 or not all(arguments) or not _readable_file(arguments[0]):
        return None
    source, target = arguments
    return Request(Path(source), Path(target), **fields)  # type: ignore[arg-type]


def _plain_number(text: str) -> bool:
    """``44100``, not ``+44100``, ``044100`` or ``44_100``: digits any parser reads alike."""
    return text.isascii() and text.isdigit() and (text == "0" or not text.startswith("0"))


def _readable_file(path: str) -> bool:
    """What click's ``Path(exists=True, dir_okay=False)`` lets through: it exists (links
    followed), is not a folder, and can be read."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return False
    return not stat.S_ISDIR(mode) and os.access(path, os.R_OK)


def run(request: Request) -> None:
    """Convert ``request.source`` into ``request.target``; ``fail`` on a refusal."""
    # numpy's OpenBLAS starts a thread per core that spins a while, although a conversion
    # never multiplies a matrix: 50 ms of CPU taken from the other cores (or from the decoder
    # itself when they are busy).
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from wavforge import audio

    source, target = request.source, request.target
    _check_output(source, target, request.force)
    requested = {
        "bit_depth": request.bit_depth,
        "sample_format": "float" if request.as_float else None,
        "sample_rate": request.sample_rate,
        "dither": request.dither,
        "preset": request.preset,
    }
    try:
        options = audio.OutputOptions.parse(requested, _OPTION_NAMES)
    except ValueError as error:
        fail(str(error), code=EXIT_USAGE)
    limits = _limits()
    target = target.resolve()
    with tempfile.NamedTemporaryFile(
        dir=target.parent, prefix=f".{target.name}.", suffix=".part", delete=False
    ) as tmp:
        scratch = Path(tmp.name)
    try:
        result = audio.convert(
            source,
            scratch,
            options=options,
            limits=limits,
            checksum=request.as_json,
            loudness=request.as_json if request.loudness is None else request.loudness,
            peaks=request.peaks,
            dither_seed=_dither_seed(source, options),
        )
        scratch.replace(target)
        if result.peaks is not None:
            _write_peaks(result, target)
    except audio.AudioError as error:
        fail(f"{source.name}: {error}")
    finally:
        scratch.unlink(missing_ok=True)
    if request.as_json:
        import json

        print(json.dumps({"file": str(target), "analysis": result.analysis.to_dict()}))
    else:
        print(f"{target.name}: {describe(result)}")  # plain text: rich would slow the exit


def _write_peaks(result: ConversionResult, target: Path) -> None:
    """The waveform peaks beside the WAV, as the service stores them (audiowaveform JSON)."""
    import json

    document = result.peaks.audiowaveform(result.sample_rate) if result.peaks else None
    beside = target.with_suffix(".peaks.json")
    beside.write_text(json.dumps(document, separators=(",", ":")), encoding="ascii")


def _dither_seed(source: Path, options: OutputOptions) -> int:
    """The same file (by name and size) dithers the same way each time; without dither the
    seed is never used (and hashing it would only cost the time to load hashlib)."""
    from wavforge.audio.options import dither_seed

    if options.resolved().dither is None:
        return 0
    return dither_seed(f"{source.name}:{source.stat().st_size}")


def _limits() -> Limits:
    """The engine's own limits, unless a ``WAVFORGE_*`` variable of :data:`LIMIT_SETTINGS`
    (read as pydantic reads them, in any case) says otherwise."""
    from wavforge.audio import Limits

    if any(name.upper() in LIMIT_SETTINGS for name in os.environ):
        return settings().audio_limits()
    return Limits()


def _check_output(source: Path, target: Path, force: bool) -> None:
    """Refuse to write over the input (whatever the spelling or link that names it), and over
    any existing file unless ``--force``."""
    if target.exists() and (target.resolve() == source.resolve() or target.samefile(source)):
        fail(f"{target}: that is the input file; name another output", code=EXIT_USAGE)
    if target.is_dir():
        fail(f"{target}: is a folder; name the output file", code=EXIT_USAGE)
    if target.exists() and not force:
        fail(f"{target}: exists; pass --force to replace it", code=EXIT_USAGE)


def describe(result: ConversionResult) -> str:
    """One line a person can check at a glance."""
    facts = result.analysis
    kind = "float" if facts.output_sample_format == "float" else "PCM"
    peak = "silent" if facts.peak_dbfs is None else f"peak {facts.peak_dbfs:+.2f} dBFS"
    minutes, seconds = divmod(facts.duration, 60)
    line = (
        f"{facts.output_bit_depth}-bit {kind}, {facts.output_sample_rate} Hz, "
        f"{facts.output_channels} ch, {int(minutes)}:{seconds:06.3f} ({facts.frames} frames), "
        f"{peak}, {facts.clipped_samples} clipped, {result.bytes_written} bytes"
    )
    if facts.integrated_loudness is not None:
        line += (
            f", {facts.integrated_loudness:.1f} LUFS, LRA {facts.loudness_range:.1f} LU, "
            f"true peak {facts.true_peak_dbtp:+.2f} dBTP"
        )
    return "\n".join([line, *(f"warning: {text}" for text in facts.warnings)])
