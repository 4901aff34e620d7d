"""The root command and the options several commands share.

Exit codes, consoles and ``fail`` live in ``wavforge.cli.common`` (``convert-file`` runs
without Typer) and are re-exported here for the command modules.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from wavforge.cli.common import EXIT_FAILED, EXIT_UNREACHABLE, EXIT_USAGE, console, fail

__all__ = [
    "EXIT_FAILED",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
    "DitherOption",
    "JsonOption",
    "PresetOption",
    "app",
    "console",
    "fail",
    "plain_metavars",
]

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
