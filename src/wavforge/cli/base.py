"""The root command and what every command module shares: consoles, failing, exit codes."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Annotated, NoReturn

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
