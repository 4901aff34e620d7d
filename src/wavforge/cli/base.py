"""The root command and what every command module shares: consoles, failing, exit codes."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

if TYPE_CHECKING:  # imported where used: `convert-file` should start in a blink
    from rich.console import Console

app = typer.Typer(
    help="wavforge: music tracks to lossless WAV, behind a task API.", no_args_is_help=True
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
# Output options shared by convert-file and convert (the rules are OutputOptions.parse's).
DitherOption = Annotated[
    str | None,
    typer.Option(
        "--dither", help="tpdf: triangular dither where bits are dropped (default: none)."
    ),
]
PresetOption = Annotated[
    str | None,
    typer.Option("--preset", help="distribution: 44.1 kHz, 16-bit, TPDF dither, soxr resampling."),
]


def plain_metavars(command: Any) -> Any:
    """Name option values as Unix help does (``--out OUT``), and give flags none.

    Typer labels values with their Python types (``<str>``, ``<int range>``) and even shows
    ``<bool>`` after a flag, which reads as if the flag took a value; ``--help`` included.
    (Typer carries its own copy of click, so the parameters are told apart by their kind,
    not their class.)
    """
    help_option = command.get_help_option(command.context_class(command))
    for param in [*command.params, help_option]:
        kind = getattr(param, "param_type_name", "")
        if kind == "option" and param.metavar is None:
            param.metavar = "" if param.is_flag else _value_name(param.opts)
        elif kind == "argument":  # its name (``TARGET``) says it; no ``<path>`` beside it
            param.metavar = param.metavar or (param.name or "value").upper()
            param.display_type_rich = _no_type
    for sub in getattr(command, "commands", {}).values():
        plain_metavars(sub)
    return command


def _no_type(ctx: Any) -> None:
    return None


def _value_name(flags: list[str]) -> str:
    """``--sample-rate`` takes a ``SAMPLE_RATE``."""
    return max(flags, key=len).lstrip("-").replace("-", "_").upper()


# Exit codes of every command (README, "Command line").
EXIT_FAILED = 1  # the command ran and something it was asked to do failed
EXIT_USAGE = 2  # wrong arguments (click's own code for usage errors)
EXIT_UNREACHABLE = 3  # the server could not be reached, or it refused the API key


@functools.cache
def console(stderr: bool = False) -> Console:
    """Rich consoles, made on first use: importing rich costs more than a conversion's start."""
    from rich.console import Console

    return Console(stderr=stderr)


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    console(stderr=True).print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)
