"""What every command shares and needs no Typer for: exit codes, consoles, failing, settings.

``convert-file`` runs without Typer (see ``wavforge.cli.convert_file``), so nothing here may
import it, nor rich or pydantic before they are used.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from rich.console import Console

    from wavforge.config import Settings

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
    """Print ``error: message`` on stderr and end the command with ``code``.

    ``SystemExit`` rather than ``typer.Exit``: Typer lets it through unchanged (the process
    ends with the same status) and a command run without Typer needs no import to raise it.
    """
    console(stderr=True).print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    raise SystemExit(code)


def settings(**overrides: Any) -> Settings:
    """The ``WAVFORGE_*`` settings, with ``overrides`` that are not None; invalid ones fail."""
    from pydantic import ValidationError

    from wavforge.config import Settings

    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        fail(f"invalid settings: {problems}")
